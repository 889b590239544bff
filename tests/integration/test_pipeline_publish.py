"""The pipeline's publishing half in-process: loops from an estimated tempo, templated names
that are taken, a failed export that leaves neither the file nor its peaks."""

from __future__ import annotations

import pytest
import soundfile

from services.audio.loops import loop_frames
from services.pipeline import generate_track
from tests.integration.test_audio_pipeline import workspace  # noqa: F401  (fixture)

PROMPT = "deep house in A minor at 124 BPM"


class _UnknownRenderer:
    """The real engine, but like MusicGen it says nothing of what it rendered."""

    def __init__(self):
        from services.generation import MusicGenerationEngine

        self._engine = MusicGenerationEngine()
        self.sample_rate = self._engine.sample_rate
        self.last_spec = None

    def __getattr__(self, name):
        return getattr(self._engine, name)


def test_a_loop_from_the_estimated_tempo_when_the_renderer_says_nothing(workspace):  # noqa: F811
    result = generate_track(PROMPT, duration=10.0, seed=3, engine=_UnknownRenderer(),
                            delivery={"loop_bars": 2, "format": "flac"})
    metadata = result.metadata
    assert "rendered" not in metadata and metadata["tempo_source"] == "estimated"
    assert metadata["bpm"] == pytest.approx(124.0, abs=0.5)
    assert soundfile.info(result.file_path).frames == loop_frames(2, metadata["bpm"], 32000)


def test_an_opus_record_has_the_files_rate(workspace):  # noqa: F811
    from services.storage import get_generation, get_session

    result = generate_track(PROMPT, duration=2.0, seed=3, delivery={"format": "opus"})
    with get_session() as session:
        record = get_generation(session, result.generation_id).to_dict()
    assert record["sample_rate"] == result.sample_rate == 48000 and record["file_path"].endswith(".opus")


def test_a_templated_name_already_taken_gets_the_job_id(workspace):  # noqa: F811
    delivery = {"name_template": "{bpm}_{key}", "format": "ogg"}
    first = generate_track(PROMPT, duration=4.0, seed=3, delivery=delivery)
    second = generate_track(PROMPT, duration=4.0, seed=3, delivery=delivery)
    assert first.file_path.endswith("/124bpm_Am.ogg")
    assert second.file_path.endswith(f"/124bpm_Am_{second.job_id}.ogg")


def test_a_failed_export_leaves_no_file_and_no_peaks(workspace, monkeypatch):  # noqa: F811
    from services.audio import export as export_module
    from services.storage import get_all_generations, get_session

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_module.AudioExporter, "_export_validated", broken)
    with pytest.raises(OSError, match="disk full"):
        generate_track(PROMPT, duration=4.0, seed=3, delivery={"peaks": 128, "format": "mp3"})
    with get_session() as session:
        (record,) = [g.to_dict() for g in get_all_generations(session)]
    assert record["status"] == "failed" and "disk full" in record["error_message"]
    outputs = workspace / "outputs"
    assert not outputs.exists() or not [p for p in outputs.rglob("*") if p.is_file()]
