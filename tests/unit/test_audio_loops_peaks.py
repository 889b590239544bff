"""Loop-ready audio (exact length, seamless repeat), file-name templates, delivery options,
and waveform peaks written beside a file (audiowaveform JSON and binary .dat v2)."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import soundfile

from services.audio import AudioExporter
from services.audio.delivery import DeliveryOptions, render_file_name, track_tags
from services.audio.loops import loop_frames, make_loop
from services.audio.peaks import array_peaks, peaks_dat, waveform_peaks
from services.errors import AudioValidationError
from tests.signals import music_like, sine

SR = 32000


# --- loops -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bars, bpm, beats, expected", [
    (4, 124.0, 4, 247742),  # 16 beats x 60/124 s x 32000 = 247741.94
    (1, 120.0, 4, 64000), (2, 90.0, 3, 128000), (8, 174.0, 4, 353103),
])
def test_a_loop_is_exactly_n_bars_at_the_exact_tempo(bars, bpm, beats, expected):
    assert loop_frames(bars, bpm, SR, beats) == expected
    audio = music_like(20.0, SR, bpm=bpm)
    loop, points = make_loop(audio, SR, bpm, bars, beats_per_bar=beats)
    assert loop.shape == (2, expected)
    assert (points.bars, points.start_frame, points.end_frame) == (bars, 0, expected - 1)


def test_the_loop_repeats_without_a_click():
    """A 441 Hz sine does not fit a whole number of periods in 4 bars at 124 BPM, so cutting
    it leaves a jump at the seam; the crossfade from what would have followed makes the step
    from the last sample to the first no larger than any step inside the sine."""
    audio = sine(441.0, -6.0, 10.0, SR).astype(np.float32)
    largest_step = np.abs(np.diff(audio[0])).max()
    length = loop_frames(4, 124.0, SR)
    cut = audio[:, :length]
    assert abs(cut[0, 0] - cut[0, -1]) > 3 * largest_step  # the click a plain cut leaves
    loop, _ = make_loop(audio, SR, 124.0, 4)
    assert abs(loop[0, 0] - loop[0, -1]) <= 1.05 * largest_step
    # Inside the 10 ms fade, equal power may lift two correlated sines by up to 3 dB (x1.41),
    # smoothly: never a click.
    assert np.abs(np.diff(loop[0])).max() <= 1.45 * largest_step
    np.testing.assert_array_equal(loop[:, 400:], audio[:, 400:length])  # only ~10 ms is touched


def test_the_crossfade_keeps_the_power_of_uncorrelated_audio():
    noise = np.random.default_rng(1).standard_normal((1, SR * 10)).astype(np.float32) * 0.1
    loop, _ = make_loop(noise, SR, 120.0, 2, crossfade_seconds=0.5)
    fade = slice(0, SR // 2)
    ratio_db = 10 * math.log10(np.mean(loop[0, fade] ** 2) / np.mean(noise[0, fade] ** 2))
    assert abs(ratio_db) < 0.5  # equal power: sin^2 + cos^2 = 1


def test_a_loop_starts_at_the_first_downbeat():
    audio = np.arange(SR * 10, dtype=np.float32)[None] / (SR * 10)
    loop, _ = make_loop(audio, SR, 120.0, 1, start_seconds=0.5, crossfade_seconds=0.0)
    assert loop[0, 0] == audio[0, SR // 2]


@pytest.mark.parametrize("bars, bpm, message", [
    (8, 124.0, r"loop_bars=8 needs 15.48 s of audio at 124 BPM .*the track has 4.00 s"),
    (0, 124.0, "loop_bars must be between 1 and 64"),
    (2, None, "needs the track's tempo"),
])
def test_impossible_loops_are_refused_naming_the_option(bars, bpm, message):
    with pytest.raises(AudioValidationError, match=message):
        make_loop(music_like(4.0, SR), SR, bpm, bars)
    with pytest.raises(TypeError, match="whole number of bars"):
        make_loop(music_like(4.0, SR), SR, 120.0, 2.5)


# --- delivery options and names ------------------------------------------------------------------

@pytest.mark.parametrize("template, expected", [
    ("{job_id}_{bpm}_{key}", "gen_1_124bpm_Am"),
    ("{camelot} {bpm} {bars}/../x", None),
    ("{key}-{preset}", "Fsharpm-spotify"),
])
def test_file_name_templates_give_safe_names(template, expected):
    if expected is None:
        with pytest.raises(AudioValidationError, match="folder separator"):
            DeliveryOptions.from_request({"name_template": template})
        return
    options = DeliveryOptions.from_request({"name_template": template, "preset": "spotify"})
    key = "A minor" if "bpm" in template else "F# minor"
    name = render_file_name(options.name_template, job_id="gen_1", bpm=123.97, key=key, preset=options.preset)
    assert name == expected
    assert render_file_name("{bpm}{key}", job_id="gen_1", bpm=None, key=None) == "unknown-bpmunknown-key"
    assert render_file_name("..", job_id="gen_1", bpm=None, key=None) == "gen_1"


@pytest.mark.parametrize("request_, labels, message", [
    ({"format": "aac"}, None, "format must be one of wav, flac, mp3, opus, ogg; got 'aac'"),
    ({"preset": "radio"}, {"preset": "--preset"}, "--preset must be one of"),
    ({"loop_bars": 99}, {"loop_bars": "--loop-bars"}, "--loop-bars must be between 1 and 64"),
    ({"name_template": "{title}"}, None, r"name_template may use .*got \{title\}"),
    ({"name_template": "{"}, None, "is not a valid template"),
    ({"name_template": "{bpm:>99999}"}, None, "without ! or :"),
    ({"name_template": ""}, None, "name_template must be a non-empty string"),
    ({"peaks": 0}, {"peaks": "--peaks"}, "--peaks must be samples per pixel"),
    ({"mp3_mode": "128"}, None, "mp3_mode must be one of CBR_320, V0"),
    ({"dither": "no"}, None, "dither must be true or false"),
])
def test_bad_delivery_options_name_the_field_or_flag(request_, labels, message):
    with pytest.raises(AudioValidationError, match=message):
        DeliveryOptions.from_request(request_, labels=labels)


def test_delivery_options_round_trip_through_the_stored_request():
    options = DeliveryOptions.from_request({"format": ".MP3", "preset": "Apple_Music", "loop_bars": 4, "peaks": 256,
                                            "mp3_mode": "v0"})
    assert (options.format, options.preset, options.mp3_mode, options.extension) == ("mp3", "apple-music", "V0", ".mp3")
    assert DeliveryOptions.from_request(options.to_request()) == options
    assert DeliveryOptions.from_request({}) == DeliveryOptions()


def test_tags_prefer_the_renderers_exact_values():
    analysis = {"bpm": 123.7, "key": "C major", "bpm_confidence": 0.9}
    rendered = {"bpm": 124.0, "key": "A minor", "beats_per_bar": 3, "first_downbeat_seconds": 0.0}
    exact = track_tags(prompt="p", job_id="gen_1", analysis=analysis, rendered=rendered, seed=5)
    assert (exact.bpm, exact.key, exact.beats_per_bar, exact.known) == (124.0, "A minor", 3, True)
    assert exact.record["tempo_source"] == "procedural" and "bpm" in exact.record["known_fields"]
    estimated = track_tags(prompt="p", job_id="gen_1", analysis=analysis)
    assert (estimated.bpm, estimated.key, estimated.known) == (123.7, "C major", False)
    assert "known_fields" not in estimated.record and estimated.comment == "dgx-music gen_1"


# --- peaks -----------------------------------------------------------------------------------------

def test_peaks_beside_the_file_match_the_files_samples(tmp_path):
    audio = music_like(3.0, SR, seed=2)
    result = AudioExporter().export(audio, tmp_path / "t.wav", sample_rate=SR, bit_depth="PCM_24",
                                    peaks_samples_per_pixel=500)
    json_path, dat_path = result.peaks_paths
    assert json_path.endswith("t.peaks.json") and dat_path.endswith("t.peaks.dat")
    document = json.loads(open(json_path).read())
    assert (document["version"], document["bits"], document["channels"], document["samples_per_pixel"]) == (2, 16, 2, 500)
    samples = soundfile.read(result.path, dtype="float64")[0]  # decoded by libsndfile
    assert document["length"] == math.ceil(samples.shape[0] / 500)
    data = np.array(document["data"]).reshape(document["length"], 2, 2)
    for pixel in (0, 37, document["length"] - 1):
        chunk = samples[pixel * 500:(pixel + 1) * 500] * 32767
        for channel in range(2):
            assert data[pixel, channel, 0] == pytest.approx(chunk[:, channel].min(), abs=1.01)
            assert data[pixel, channel, 1] == pytest.approx(chunk[:, channel].max(), abs=1.01)
    # audiowaveform's binary format, version 2: int32 version, uint32 flags (0 = 16-bit), int32
    # sample rate, int32 samples per pixel, uint32 length, int32 channels, then int16 values.
    raw = open(dat_path, "rb").read()
    assert struct.unpack_from("<iIiiIi", raw) == (2, 0, SR, 500, document["length"], 2)
    assert np.frombuffer(raw[24:], "<i2").tolist() == document["data"]


def test_lossy_peaks_come_from_the_decoded_audio(tmp_path):
    result = AudioExporter().export(music_like(2.0, SR), tmp_path / "t.opus", sample_rate=SR,
                                    peaks_samples_per_pixel=960)
    document = json.loads(open(result.peaks_paths[0]).read())
    assert document["sample_rate"] == 48000 and document["length"] == math.ceil(result.frames / 960)
    from_file = waveform_peaks(result.path, points=document["length"])
    assert np.abs(np.array(from_file["data"]) - np.array(document["data"])).max() <= 2


def test_array_peaks_edges():
    audio = np.array([[0.5, -0.5, 1.0, -1.0, 0.25]], np.float32)
    document = array_peaks(audio, SR, 2)
    assert document["data"] == [-16384, 16384, -32767, 32767, 8192, 8192]
    assert peaks_dat(document)[24:] == np.array(document["data"], "<i2").tobytes()
    with pytest.raises(ValueError, match="samples_per_pixel"):
        array_peaks(audio, SR, 0)
