"""Tempo and key accuracy benchmark: a labelled corpus rendered here, scoring, and the peers.

``corpus`` builds the track list (generated grooves and Bach chorales) from a seed,
``render`` turns each track's MIDI into a 32 kHz WAV with FluidSynth (cached under
``benchmarks/.cache/``), ``scoring`` holds the MIREX-style measures, ``peers`` runs librosa
and essentia. ``benchmarks/bench_tempo_key_accuracy.py`` ties them together.
"""
