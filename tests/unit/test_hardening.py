"""Prompt hygiene at every entry point, terminal escaping, scale-safe loudness, and tensors
without data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services._text import MAX_PROMPT_CHARS, clean_prompt, terminal_safe
from services.audio import measure_loudness
from services.errors import AudioValidationError, GenerationRequestError
from tests.signals import sine


@pytest.mark.parametrize("raw, cleaned", [
    ("  techno\tat 128 BPM\n", "techno at 128 BPM"),
    ("line one\r\nline two", "line one  line two"),
    ("x" * MAX_PROMPT_CHARS, "x" * MAX_PROMPT_CHARS),
    ("雨の音 ambient", "雨の音 ambient"),
])
def test_clean_prompt_keeps_text_and_turns_line_breaks_into_spaces(raw, cleaned):
    assert clean_prompt(raw) == cleaned


@pytest.mark.parametrize("raw, message", [
    ("dark \x1b[31mtechno", "found U+001B at character 6"),
    ("nul\x00byte", "U+0000"),
    ("del\x7f", "U+007F"),
    ("c1 \x9b control", "U+009B"),
    ("bidi \u202e override", "U+202E"),
    ("bytes \udcff not utf-8", "U+DCFF"),
    ("x" * (MAX_PROMPT_CHARS + 1), "at most 2000 characters; got 2001"),
    (" \n\t ", "must not be empty"),
])
def test_clean_prompt_refuses_with_the_reason(raw, message):
    with pytest.raises(GenerationRequestError, match="^prompt must") as raised:
        clean_prompt(raw)
    assert message in str(raised.value) and "\x1b" not in str(raised.value)


def test_clean_prompt_refuses_other_types():
    with pytest.raises(TypeError, match="prompt must be a str"):
        clean_prompt(b"techno")


def test_terminal_safe_escapes_what_would_drive_a_terminal():
    assert terminal_safe("plain é ♯") == "plain é ♯"
    assert terminal_safe("a\x1b[2Jb\nc\u202ed\x00") == "a\\x1b[2Jb\\x0ac\\u202ed\\x00"
    assert terminal_safe(42) == "42"


def test_every_python_entry_point_refuses_control_characters(tmp_path, monkeypatch):
    from services.generation import MusicGenerationEngine
    from services.pipeline import submit_generation
    from services.storage import create_generation, dispose_engines, get_session
    from services.storage.validation import StorageValueError

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("AUDIO_OUTPUT_DIR", str(tmp_path / "out"))
    dispose_engines()
    try:
        with pytest.raises(GenerationRequestError, match="control characters"):
            MusicGenerationEngine().generate("house \x1b[5m", duration=1.0)
        with pytest.raises(GenerationRequestError, match="control characters"):
            submit_generation("house \x07")
        with get_session() as session, pytest.raises(StorageValueError, match="at most 2000 characters"):
            create_generation(session, prompt="y" * 2001, model_name="m", duration_seconds=1.0, sample_rate=32000,
                              channels=2, file_path=str(tmp_path / "a.wav"))
        generation = submit_generation("house\nat 120 BPM")
        assert generation.prompt == "house at 120 BPM" and generation.file_path.startswith(str(tmp_path))
    finally:
        dispose_engines()


def test_the_http_request_model_refuses_control_characters():
    from pydantic import ValidationError

    from services.api.schemas import GenerationRequest

    with pytest.raises(ValidationError, match="control characters"):
        GenerationRequest(prompt="house \x1b]0;title\x07")
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        GenerationRequest(prompt="z" * 2001)
    assert GenerationRequest(prompt="house\tat 120 BPM").prompt == "house at 120 BPM"


@pytest.mark.parametrize("dtype, exponent", [(np.float64, k) for k in (-300, -150, -40, -7, 7, 30, 150, 300)]
                         + [(np.float32, k) for k in (-30, -7, 7, 30)])  # float32 holds 1e-38..3e38
def test_loudness_is_exact_at_any_float_scale(implementation, dtype, exponent):
    """A tone scaled by 10**k reads 20k dB louder, to the thousandth (float32: where it can hold it);
    scaled below the -70 LUFS absolute gate, its integrated loudness is -inf and its range 0
    (BS.1770: no block passes the gate), while peaks and the momentary maximum still shift."""
    tone = sine(997.0, -20.0, 1.0, 48000, 2)
    scale = 10.0**exponent
    report = measure_loudness((tone * scale).astype(dtype), 48000)
    reference = measure_loudness(tone, 48000)
    shift = 20.0 * exponent
    if reference.integrated_lufs + shift < -70.0:
        assert report.integrated_lufs == -math.inf and report.loudness_range_lu == 0.0
    else:
        assert report.integrated_lufs == pytest.approx(reference.integrated_lufs + shift, abs=1e-3)
        assert report.loudness_range_lu == pytest.approx(reference.loudness_range_lu, abs=1e-6)
    assert report.true_peak_dbtp == pytest.approx(reference.true_peak_dbtp + shift, abs=1e-3)
    assert report.momentary_max_lufs == pytest.approx(reference.momentary_max_lufs + shift, abs=1e-3)


def test_silence_needs_no_rescaling():
    report = measure_loudness(np.zeros((2, 48000)), 48000)
    assert report.integrated_lufs == -math.inf and report.true_peak_dbtp == -math.inf


def test_a_meta_tensor_is_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    from services.audio import AudioExporter

    with pytest.raises(AudioValidationError, match="'meta' device"):
        AudioExporter().export_wav(torch.zeros(2, 1000, device="meta"), tmp_path / "m.wav")
    assert list(tmp_path.iterdir()) == []


def test_the_summary_shows_rendered_values_beside_the_measured_ones():
    from services.cli import _summary_lines

    rendered = {"bpm": 124.0, "key": "A minor", "beats_per_bar": 4, "first_downbeat_seconds": 0.0,
                "source": "procedural"}
    lines = _summary_lines({"bpm": 124.0, "bpm_confidence": 1.0, "key": "A minor", "key_confidence": 1.0,
                            "rendered": rendered, "measured": {"bpm": None, "bpm_confidence": 0.0,
                                                               "key": "E minor", "key_confidence": 0.4}})
    assert "Tempo:          124.0 BPM (rendered; measured none)" in lines
    assert "Key:            A minor (rendered; measured E minor, conf. 0.40)" in lines
    lines = _summary_lines({"bpm": 90.0, "bpm_confidence": 0.61, "key": None, "key_confidence": 0.0})
    assert "Tempo:          90.0 BPM (conf. 0.61)" in lines and "Key:            -" in lines
