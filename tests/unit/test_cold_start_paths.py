"""The light paths a cold start takes: NumPy's FFT for the analysis, NumPy audio in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from services.audio import _fft


def test_real_fft_matches_scipy_on_frames_and_padding():
    from scipy import fft as scipy_fft

    rng = np.random.default_rng(0)
    frames = rng.standard_normal((8, 1500)).astype(np.float32)
    ours = _fft.rfft(frames, n=2048, axis=1)
    assert ours.dtype == np.complex64  # float32 stays single precision
    np.testing.assert_allclose(ours, scipy_fft.rfft(frames, n=2048, axis=1), rtol=0, atol=2e-4)
    signal = rng.standard_normal(3001)
    np.testing.assert_allclose(_fft.irfft(_fft.rfft(signal, 4000), 4000)[:3001], signal, atol=1e-12)


def test_long_audio_is_transformed_by_scipy_short_by_numpy():
    import threading

    import scipy.fft

    frames = np.random.default_rng(1).standard_normal((4, 2048)).astype(np.float32)
    assert _fft._module() is np.fft  # outside an analysis
    with _fft.sized_for(_fft.SCIPY_FROM_SECONDS):
        assert _fft._module() is scipy.fft
        with _fft.sized_for(16.0):
            assert _fft._module() is np.fft
            short = _fft.rfft(frames, axis=1)
        assert _fft._module() is scipy.fft  # restored
        seen = []
        other = threading.Thread(target=lambda: seen.append(_fft._module()))
        other.start()
        other.join()
        assert seen == [np.fft]  # per thread: concurrent analyses choose for themselves
        long = _fft.rfft(frames, axis=1)
    assert _fft._module() is np.fft
    np.testing.assert_allclose(short, long, rtol=0, atol=2e-4)


def test_next_fast_len_is_the_smallest_5_smooth_length():
    def smooth(n):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for target in range(1, 3000):
        length = _fft.next_fast_len(target)
        assert length >= target and smooth(length)
        assert not any(smooth(n) for n in range(target, length))
    assert _fft.next_fast_len(1_000_001) == 1_012_500  # 2^2 * 3^4 * 5^5


def test_next_fast_len_refuses_zero():
    with pytest.raises(ValueError, match="target must be >= 1"):
        _fft.next_fast_len(0)


def test_pipeline_takes_numpy_audio_and_falls_back_to_the_spec_call():
    from services.pipeline import _generate

    class SpecOnlyEngine:  # a user's engine with the spec's method alone
        def generate_audio(self, prompt, duration=16.0, seed=None):
            return np.zeros((2, int(duration * 10)), dtype=np.float32), 0.5

    audio, seconds = _generate(SpecOnlyEngine(), "x", 2.0, 1)
    assert audio.shape == (2, 20) and seconds == 0.5

    from services.generation import MusicGenerationEngine

    audio, seconds = _generate(MusicGenerationEngine(backend="procedural"), "house at 124 BPM", 1.0, 3)
    assert isinstance(audio, np.ndarray) and audio.shape == (2, 32000) and seconds > 0


def test_storage_package_and_sqlite_reader_import_no_sqlalchemy():
    import subprocess
    import sys

    code = ("import sys, services.storage, services.storage.sqlite_reads, services.storage.schema; "
            "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    import services.storage

    assert services.storage.get_session.__module__ == "services.storage.database"  # resolved on first use
    assert "get_session" in dir(services.storage)
