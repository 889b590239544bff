"""The spec's "Complete Integration Example", run as written, and the pipeline built on it.

Every test points AUDIO_OUTPUT_DIR and DATABASE_URL into its own tmp_path.
"""

from __future__ import annotations

import math
import uuid

import pytest
import soundfile

from services.storage import dispose_engines


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'generations.db'}")
    dispose_engines()
    yield tmp_path
    dispose_engines()


def test_the_spec_integration_example_runs_as_written(workspace, capsys):
    # --- the spec's example, verbatim but for its missing `import uuid` (imported above) ---
    from services.audio import AudioExporter, AudioMetadataExtractor, AudioFileManager
    from services.storage import get_session, create_generation, complete_generation
    from services.generation import MusicGenerationEngine

    # Initialize components
    engine = MusicGenerationEngine()
    exporter = AudioExporter(target_lufs=-16.0)
    metadata_extractor = AudioMetadataExtractor(extract_bpm=True, extract_key=False)
    file_manager = AudioFileManager()

    # 1. Generate audio (WS1)
    prompt = "upbeat electronic dance music at 140 BPM"
    audio_tensor, generation_time = engine.generate_audio(prompt, duration=16.0)
    sample_rate = 32000

    # 2. Get output path (WS2 Week 2)
    job_id = f"gen_{uuid.uuid4().hex[:8]}"
    output_path = file_manager.get_output_path(job_id)

    # 3. Create database record (WS2 Week 1)
    with get_session() as session:
        generation = create_generation(
            session=session,
            prompt=prompt,
            model_name="musicgen-small",
            duration_seconds=16.0,
            sample_rate=sample_rate,
            channels=2,
            file_path=str(output_path)
        )

    # 4. Export audio to WAV (WS2 Week 2)
    final_path, file_size = exporter.export_wav(
        audio_tensor=audio_tensor,
        output_path=str(output_path),
        sample_rate=sample_rate,
        normalize=True,
        bit_depth='PCM_16'
    )

    # 5. Extract metadata (WS2 Week 2)
    metadata = metadata_extractor.extract_metadata(final_path, compute_stats=True)

    # 6. Update database (WS2 Week 1)
    with get_session() as session:
        complete_generation(
            session=session,
            generation_id=generation.id,
            generation_time=generation_time,
            file_size_bytes=file_size,
            metadata=metadata
        )

    # 7. Print results
    print(f"Generated: {final_path}")
    print(f"Duration: {metadata['duration_seconds']:.2f}s")
    print(f"BPM: {metadata['bpm']:.1f}")
    print(f"File size: {file_size / 1024 / 1024:.2f} MB")
    print(f"Peak: {metadata['peak_amplitude']:.3f}")
    print(f"Dynamic range: {metadata['dynamic_range_db']:.1f} dB")
    # --- end of the spec's example ---

    out = capsys.readouterr().out
    assert f"Generated: {final_path}" in out
    assert str(output_path) == final_path and str(workspace / "outputs") in final_path
    assert metadata["duration_seconds"] == pytest.approx(16.0, abs=1e-3)
    assert metadata["bpm"] == pytest.approx(140.0, abs=0.5)  # the engine renders the stated tempo
    assert metadata["loudness_lufs"] == pytest.approx(-16.0, abs=0.1) or metadata["true_peak_dbtp"] >= -1.1
    assert metadata["true_peak_dbtp"] <= -1.0 + 0.1
    with get_session() as session:
        from services.storage import get_generation

        stored = get_generation(session, generation.id).to_dict()
    assert stored["status"] == "completed"
    assert stored["file_size_bytes"] == file_size
    assert stored["metadata"]["bpm"] == pytest.approx(metadata["bpm"])


def test_generate_track_records_a_finished_measured_track(workspace):
    from services.pipeline import generate_track
    from services.storage import get_generation, get_session

    steps = []
    result = generate_track("dark techno in A minor at 128 BPM", duration=8.0, seed=7, on_step=steps.append)
    assert steps == ["record", "generate", "analyse", "export", "complete"]
    info = soundfile.info(result.file_path)
    assert (info.samplerate, info.channels, info.subtype) == (32000, 2, "PCM_16")
    assert result.file_path.startswith(str(workspace / "outputs"))
    assert result.prompt_bpm == 128.0
    assert result.metadata["bpm"] == pytest.approx(128.0, abs=0.5)
    assert result.metadata["key"] in ("A minor", "C major")  # the relative major scores 0.3 in MIREX terms
    with get_session() as session:
        stored = get_generation(session, result.generation_id).to_dict()
    assert stored["status"] == "completed" and stored["file_path"] == result.file_path
    assert stored["metadata"]["job_id"] == result.job_id
    assert stored["metadata"]["seed"] == 7


class _ExplodingEngine:
    """Wraps the real engine; fails at generation."""

    def __init__(self):
        from services.generation import MusicGenerationEngine

        self._engine = MusicGenerationEngine()
        self.sample_rate = self._engine.sample_rate

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate_audio(self, prompt, duration=16.0, seed=None):
        raise RuntimeError("GPU fell off the bus")

    generate_array = generate_audio  # the pipeline's NumPy path


class _ExplodingExtractor:
    def extract_metadata_from_tensor(self, audio, sample_rate, compute_stats=True, bpm_hint=None):
        raise ValueError("analysis crashed")


@pytest.mark.parametrize(
    "component, message",
    [("engine", "GPU fell off the bus"), ("extractor", "analysis crashed")],
)
def test_a_failed_step_leaves_a_failed_record_and_no_file(workspace, component, message):
    from services.pipeline import generate_track
    from services.storage import get_all_generations, get_session

    kwargs = {"engine": _ExplodingEngine()} if component == "engine" else {"extractor": _ExplodingExtractor()}
    with pytest.raises((RuntimeError, ValueError), match=message):
        generate_track("lofi hip hop at 85 BPM", duration=4.0, seed=1, **kwargs)
    with get_session() as session:
        (record,) = [g.to_dict() for g in get_all_generations(session)]
    assert record["status"] == "failed"
    assert message in record["error_message"]
    outputs = workspace / "outputs"
    assert not outputs.exists() or not [p for p in outputs.rglob("*") if p.is_file()]


@pytest.mark.parametrize("prompt, duration, error", [("", 8.0, ValueError), ("house", -1.0, ValueError),
                                                     ("house", math.inf, ValueError), (None, 8.0, TypeError)])
def test_invalid_requests_are_refused_before_anything_is_recorded(workspace, prompt, duration, error):
    from services.pipeline import generate_track
    from services.storage import count_generations, get_session

    with pytest.raises(error):
        generate_track(prompt, duration=duration)
    with get_session() as session:
        assert count_generations(session) == 0


class _FixedExtractor:
    """A real extractor whose tempo and key are replaced by wrong ones (a disagreeing analysis)."""

    def __init__(self):
        from services.audio import AudioMetadataExtractor

        self._real = AudioMetadataExtractor(extract_bpm=True, extract_key=True)

    def extract_metadata_from_tensor(self, audio, sample_rate, compute_stats=True, bpm_hint=None):
        metadata = self._real.extract_metadata_from_tensor(audio, sample_rate, compute_stats=compute_stats,
                                                           bpm_hint=bpm_hint)
        return {**metadata, "bpm": 96.0, "bpm_confidence": 0.4, "key": "Bb minor", "key_confidence": 0.29}


class _UnknownSpecEngine(_ExplodingEngine):
    """The real engine seen as a backend that does not say what it rendered (like MusicGen)."""

    last_spec = None

    def generate_audio(self, prompt, duration=16.0, seed=None):
        return self._engine.generate_audio(prompt, duration=duration, seed=seed)

    def generate_array(self, prompt, duration=16.0, seed=None):
        return self._engine.generate_array(prompt, duration=duration, seed=seed)


def test_procedural_tracks_carry_the_tempo_and_key_they_were_rendered_at(workspace):
    from services.pipeline import generate_track
    from services.storage import get_generation, get_session

    result = generate_track("techno in F minor at 132 BPM", duration=6.0, seed=3)
    rendered = result.metadata["rendered"]
    assert rendered == {"bpm": 132.0, "key": "F minor", "beats_per_bar": 4,
                        "first_downbeat_seconds": 0.0, "source": "procedural"}
    assert (result.metadata["bpm"], result.metadata["key"]) == (132.0, "F minor")
    assert result.metadata["bpm_confidence"] == result.metadata["key_confidence"] == 1.0
    measured = result.metadata["measured"]
    assert set(measured) == {"bpm", "bpm_confidence", "key", "key_confidence"}
    assert measured["bpm"] == pytest.approx(132.0, rel=0.04)  # the analysis still ran on the file
    with get_session() as session:
        stored = get_generation(session, result.generation_id).to_dict()
    assert stored["metadata"]["rendered"] == rendered and stored["metadata"]["measured"] == measured
    assert (stored["bpm"], stored["key"]) == (132.0, "F minor")


def test_a_disagreeing_analysis_is_logged_and_kept_as_measured(workspace, caplog):
    from services.pipeline import generate_track

    with caplog.at_level("WARNING", logger="services.pipeline"):
        result = generate_track("house in D major at 124 BPM", duration=4.0, seed=5, extractor=_FixedExtractor())
    assert (result.metadata["bpm"], result.metadata["key"]) == (124.0, "D major")
    assert result.metadata["measured"] == {"bpm": 96.0, "bpm_confidence": 0.4, "key": "Bb minor",
                                           "key_confidence": 0.29}
    (record,) = [r for r in caplog.records if "rendered" in r.getMessage()]
    assert "96.00 BPM, Bb minor" in record.getMessage() and "124.00 BPM, D major" in record.getMessage()


def test_without_a_rendered_spec_the_measured_values_are_reported(workspace):
    from services.pipeline import generate_track

    result = generate_track("house at 124 BPM", duration=4.0, seed=5, engine=_UnknownSpecEngine())
    assert "rendered" not in result.metadata and "measured" not in result.metadata
    assert result.metadata["bpm"] == pytest.approx(124.0, rel=0.04)
