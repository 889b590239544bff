"""BS.1770-5 / EBU R128 meter: EBU Tech 3341 and 3342 conformance, libebur128 and ffmpeg cross-checks.

The EBU test signals that are synthetic are generated here from their published
definitions (1 kHz sines at stated levels and durations; sines at fractions of the sample
rate with stated phases for true peak). Tolerances are the EBU's: +-0.1 LU for loudness,
+0.2/-0.4 dB for true peak, +-1 LU for loudness range.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from services.audio.loudness import LoudnessMeter, LoudnessReport, measure_loudness
from tests.signals import db_to_amplitude, full_oversampling_peak_db, music_like, sequence, silence, sine

SR = 48000

# Every test here runs on both implementations of the meter's inner loops (compiled, NumPy).
pytestmark = pytest.mark.usefixtures("implementation")


def tone(dbfs, seconds, channels=2):
    return sine(1000.0, dbfs, seconds, SR, channels)


# --- EBU Tech 3341: integrated, momentary and short-term loudness -------------------------

TECH_3341_INTEGRATED = {
    "3341-1": (lambda: tone(-23, 20), -23.0),
    "3341-2": (lambda: tone(-33, 20), -33.0),
    "3341-3": (lambda: sequence(tone(-36, 10), tone(-23, 60), tone(-36, 10)), -23.0),
    "3341-4": (
        lambda: sequence(tone(-72, 10), tone(-36, 10), tone(-23, 60), tone(-36, 10), tone(-72, 10)),
        -23.0,
    ),
    "3341-5": (lambda: sequence(tone(-26, 20), tone(-20, 20.1), tone(-26, 20)), -23.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3341_INTEGRATED))
def test_tech_3341_integrated(case):
    make, expected = TECH_3341_INTEGRATED[case]
    assert measure_loudness(make(), SR).integrated_lufs == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("dbfs", [-23.0, -33.0])
def test_tech_3341_cases_1_2_momentary_and_short_term(dbfs):
    report = measure_loudness(tone(dbfs, 20), SR)
    assert report.momentary_max_lufs == pytest.approx(dbfs, abs=0.1)
    assert report.short_term_max_lufs == pytest.approx(dbfs, abs=0.1)


def surround_5_0(lfe: bool) -> np.ndarray:
    """Tech 3341 case 6: L, R at -28 dBFS, C at -24 dBFS, Ls, Rs at -30 dBFS (+ silent LFE)."""
    left_right = tone(-28, 20, 1)[0]
    centre = tone(-24, 20, 1)[0]
    surround = tone(-30, 20, 1)[0]
    channels = [left_right, left_right, centre]
    if lfe:
        channels.append(np.zeros_like(centre))
    channels += [surround, surround]
    return np.stack(channels)


@pytest.mark.parametrize("lfe", [False, True], ids=["5.0", "5.1"])
def test_tech_3341_case_6_surround(lfe):
    assert measure_loudness(surround_5_0(lfe), SR).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_lfe_is_excluded_from_5_1():
    audio = surround_5_0(lfe=True)
    audio[3] = tone(-10, 20, 1)[0]  # a loud LFE must not change the reading
    assert measure_loudness(audio, SR).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_tech_3341_case_9_short_term_constant():
    """1.34 s at -20 dBFS and 1.66 s at -30 dBFS, repeated: every 3 s window reads -23 LUFS."""
    period = sequence(tone(-20, 1.34), tone(-30, 1.66))
    report = measure_loudness(sequence(*[period] * 7), SR)
    assert report.short_term_max_lufs == pytest.approx(-23.0, abs=0.1)
    assert report.integrated_lufs == pytest.approx(-23.0, abs=0.1)


def bursts(burst_seconds: float, segment_seconds: float, shift_seconds: float, count: int = 20) -> np.ndarray:
    """``count`` segments, each a -23 dBFS 1 kHz burst starting ``i * shift`` later than the last.

    The shifts are not multiples of 100 ms, so a meter that only looks at 100 ms block
    boundaries misses the maximum; the EBU uses such sequences for cases 10, 12 and 13.
    """
    parts = []
    for i in range(count):
        lead = 0.5 + i * shift_seconds
        parts += [silence(lead, SR), tone(-23, burst_seconds), silence(segment_seconds - lead - burst_seconds, SR)]
    return sequence(*parts)


@pytest.mark.parametrize(
    "case, burst, segment, shift, figure",
    [
        ("3341-10", 3.0, 6.0, 0.0123, "short_term_max_lufs"),
        ("3341-12", 0.4, 1.5, 0.0117, "momentary_max_lufs"),
        ("3341-13", 0.6, 2.0, 0.0239, "momentary_max_lufs"),
    ],
)
def test_tech_3341_maxima_do_not_depend_on_block_alignment(case, burst, segment, shift, figure):
    report = measure_loudness(bursts(burst, segment, shift), SR)
    assert getattr(report, figure) == pytest.approx(-23.0, abs=0.1)


# --- EBU Tech 3341: true peak ----------------------------------------------------------------

def true_peak_sine(fraction: float, amplitude: float, phase_degrees: float) -> np.ndarray:
    """A sine at ``fraction`` of the sample rate with 20 ms raised-cosine fades.

    Without fades the jump from silence to the first sample is itself a band-limited
    step whose reconstruction overshoots, which is a true peak of its own.
    """
    t = np.arange(SR) / SR
    wave = amplitude * np.sin(2 * np.pi * SR * fraction * t + np.deg2rad(phase_degrees))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return np.tile(wave * (0.5 - 0.5 * np.cos(np.pi * fade)), (2, 1))


def intersample_pulse(offset: float) -> np.ndarray:
    """A band-limited pulse whose continuous-time peak is exactly 1.0 (0 dBTP).

    A Hann-windowed sum of 24 equal cosines from 500 Hz to 12 kHz, all in phase at the
    peak, placed ``offset`` samples after a sample instant, so the samples miss it.
    """
    t = (np.arange(SR) - SR // 2 - offset) / SR
    frequencies = np.linspace(500.0, 12000.0, 24)
    pulse = np.cos(2 * np.pi * frequencies[:, None] * t[None, :]).mean(axis=0)
    window = np.where(np.abs(t) < 0.02, 0.5 + 0.5 * np.cos(np.pi * t / 0.02), 0.0)
    return np.tile(pulse * window, (2, 1))


TECH_3341_TRUE_PEAK = {
    "3341-15": (lambda: true_peak_sine(1 / 4, 0.5, 0.0), -6.0),
    "3341-16": (lambda: true_peak_sine(1 / 4, 0.5, 45.0), -6.0),
    "3341-17": (lambda: true_peak_sine(1 / 6, 0.5, 60.0), -6.0),
    "3341-18": (lambda: true_peak_sine(1 / 8, 0.5, 67.5), -6.0),
    "3341-19": (lambda: true_peak_sine(1 / 4, 1.41, 45.0), 3.0),
    "3341-20": (lambda: intersample_pulse(0.0), 0.0),
    "3341-21": (lambda: intersample_pulse(0.25), 0.0),
    "3341-22": (lambda: intersample_pulse(0.5), 0.0),
    "3341-23": (lambda: intersample_pulse(0.75), 0.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3341_TRUE_PEAK))
def test_tech_3341_true_peak(case):
    make, expected = TECH_3341_TRUE_PEAK[case]
    measured = measure_loudness(make(), SR).true_peak_dbtp
    assert expected - 0.4 <= measured <= expected + 0.2


def test_sample_peak_misses_what_true_peak_sees():
    report = measure_loudness(true_peak_sine(1 / 4, 0.5, 45.0), SR)
    assert report.sample_peak_dbfs == pytest.approx(20 * math.log10(0.5 * math.sin(math.pi / 4)), abs=1e-6)
    assert report.true_peak_dbtp > report.sample_peak_dbfs + 2.5


# --- EBU Tech 3342: loudness range ---------------------------------------------------------

@pytest.mark.parametrize(
    "levels, expected",
    [
        ((-20, -30), 10.0),
        ((-20, -15), 5.0),
        ((-40, -20), 20.0),
        ((-50, -35, -20, -35, -50), 15.0),
    ],
    ids=["3342-1", "3342-2", "3342-3", "3342-4"],
)
def test_tech_3342_loudness_range(levels, expected):
    audio = sequence(*[tone(level, 20) for level in levels])
    assert measure_loudness(audio, SR).loudness_range_lu == pytest.approx(expected, abs=1.0)


# --- defined edges --------------------------------------------------------------------------

def test_silence_reads_minus_infinity():
    report = measure_loudness(np.zeros((2, SR * 2)), SR)
    assert report == LoudnessReport(-math.inf, 0.0, -math.inf, -math.inf, -math.inf, -math.inf)


def test_audio_below_the_absolute_gate_reads_minus_infinity_but_keeps_peaks():
    report = measure_loudness(tone(-80, 5), SR)
    assert report.integrated_lufs == -math.inf
    assert report.sample_peak_dbfs == pytest.approx(-80, abs=0.01)


@pytest.mark.parametrize("seconds", [0.05, 0.2, 0.399])
def test_clip_shorter_than_one_block_is_one_block(seconds):
    """A stereo 1 kHz sine at -23 dBFS reads -23 LUFS whatever its length."""
    report = measure_loudness(tone(-23, seconds), SR)
    assert report.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert report.momentary_max_lufs == pytest.approx(report.integrated_lufs)
    assert report.short_term_max_lufs == pytest.approx(report.integrated_lufs)
    assert report.loudness_range_lu == 0.0


def test_mono_reads_3_db_below_the_same_signal_on_two_channels():
    mono = tone(-23, 10, channels=1)
    single = measure_loudness(mono[0], SR).integrated_lufs
    dual = measure_loudness(np.vstack([mono, mono]), SR).integrated_lufs
    assert dual - single == pytest.approx(10 * math.log10(2), abs=1e-6)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000])
def test_k_weighting_at_every_sample_rate(sample_rate):
    """A stereo 997 Hz sine reads its dBFS level: exact at 48 kHz, where the standard gives the
    coefficients; elsewhere the bilinear transform of the analog prototype warps the
    response at 1 kHz by at most 0.03 dB (8 kHz to 192 kHz), and libebur128 agrees."""
    audio = sine(997.0, -20.0, 5.0, sample_rate)
    measured = measure_loudness(audio, sample_rate).integrated_lufs
    assert measured == pytest.approx(-20.0, abs=1e-3 if sample_rate == 48000 else 0.05)
    assert measured == pytest.approx(libebur128_report(audio, sample_rate)[0], abs=1e-4)


@pytest.mark.parametrize("block", [1, 441, 4800, 17_000, 1 << 20])
def test_streaming_in_blocks_equals_one_shot(block):
    audio = music_like(7.3, 44100, seed=3).astype(np.float64)
    meter = LoudnessMeter(44100, 2)
    for start in range(0, audio.shape[1], block):
        meter.update(audio[:, start : start + block])
        if block == 1 and start > 3000:  # one-sample blocks: a short prefix is enough
            meter.update(audio[:, start + 1 :])
            break
    streamed, whole = meter.report(), measure_loudness(audio, 44100)
    for field in LoudnessReport.__dataclass_fields__:
        assert getattr(streamed, field) == pytest.approx(getattr(whole, field), abs=1e-6), field


def test_accepts_torch_tensors_of_any_float_dtype():
    torch = pytest.importorskip("torch")
    audio = music_like(3.0, 32000, seed=1)
    reference = measure_loudness(audio, 32000)
    for dtype, tolerance in ((torch.float32, 1e-6), (torch.float64, 1e-6), (torch.float16, 0.01), (torch.bfloat16, 0.1)):
        report = measure_loudness(torch.from_numpy(audio).to(dtype), 32000)
        assert report.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=tolerance)


@pytest.mark.parametrize(
    "audio, sample_rate, error",
    [
        (np.zeros((2, 0)), 48000, ValueError),
        (np.array([[0.0, np.nan, 0.0]]), 48000, ValueError),
        (np.zeros((2, 100)), 0, ValueError),
        (np.zeros((2, 100)), 4000, ValueError),  # K-weighting's shelf is above Nyquist
        (np.zeros((2, 100)), 48000.5, ValueError),
        (np.zeros((2, 100)), "48000", TypeError),
        ([0.0, 0.1], 48000, TypeError),
        (np.zeros((2, 100), dtype=np.int16), 48000, TypeError),
        (np.zeros((2, 2, 100)), 48000, ValueError),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(audio, sample_rate, error):
    with pytest.raises(error):
        measure_loudness(audio, sample_rate)


def test_channel_weights_are_validated():
    with pytest.raises(ValueError, match="channel_weights"):
        LoudnessMeter(48000, 2, channel_weights=(1.0,))
    with pytest.raises(ValueError, match="channels"):
        LoudnessMeter(48000, 2).update(np.zeros((3, 10)))


# --- cross-checks against independent implementations ---------------------------------------

def libebur128_report(audio: np.ndarray, sample_rate: int) -> tuple:
    pyebur128 = pytest.importorskip("pyebur128")
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(
        audio.shape[0], sample_rate, mode.MODE_I | mode.MODE_LRA | mode.MODE_TRUE_PEAK | mode.MODE_SAMPLE_PEAK
    )
    state.add_frames(np.ascontiguousarray(audio.T, dtype=np.float64).ravel(), audio.shape[1])
    true_peak = max(pyebur128.get_true_peak(state, c) for c in range(audio.shape[0]))
    return pyebur128.get_loudness_global(state), 20 * math.log10(true_peak)


@pytest.mark.parametrize("sample_rate", [32000, 44100, 48000])
@pytest.mark.parametrize("seed, bpm, gain_db", [(0, 124.0, 0.0), (1, 93.5, -12.0), (2, 171.0, -25.0)])
def test_agrees_with_libebur128_on_music(sample_rate, seed, bpm, gain_db):
    audio = music_like(12.0, sample_rate, seed=seed, bpm=bpm) * db_to_amplitude(gain_db)
    integrated, true_peak = libebur128_report(audio, sample_rate)
    report = measure_loudness(audio, sample_rate)
    assert report.integrated_lufs == pytest.approx(integrated, abs=0.05)
    assert report.true_peak_dbtp == pytest.approx(true_peak, abs=0.1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_agrees_with_ffmpeg_ebur128_filter(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    audio = music_like(12.0, 48000, seed=5, bpm=110.0) * 0.5
    path = tmp_path / "clip.wav"
    soundfile.write(path, audio.T, 48000, subtype="FLOAT")
    log = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = log[log.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    lra = float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    report = measure_loudness(audio, 48000)
    assert report.integrated_lufs == pytest.approx(integrated, abs=0.06)  # ffmpeg prints 0.1 steps
    assert report.true_peak_dbtp == pytest.approx(peak, abs=0.15)
    assert report.loudness_range_lu == pytest.approx(lra, abs=1.0)


@pytest.mark.parametrize("sample_rate", [32000, 44100])
@pytest.mark.parametrize("seed", [0, 7])
def test_true_peak_equals_full_oversampling(sample_rate, seed):
    """Skipping rows that cannot exceed the running peak changes nothing: the meter's true
    peak equals the maximum of the complete 4x interpolation (scipy's upfirdn, same filter)."""
    audio = music_like(5.0, sample_rate, seed=seed).astype(np.float64) * 1.3
    assert measure_loudness(audio, sample_rate).true_peak_dbtp == pytest.approx(full_oversampling_peak_db(audio), abs=1e-5)
