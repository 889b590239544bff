"""``dgx-music serve``: a real uvicorn server on a free port, driven over HTTP with httpx,
on SQLite and on the real PostgreSQL of ``scripts/test.sh``.

What the service hands out is read back independently: the WAV by libsndfile
(soundfile) and ffprobe where installed, the metrics by prometheus_client's parser, the
event stream by a line parser written to the SSE specification.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from tests.databases import database_url  # noqa: F401  (fixture)
from tests.service import output_files, running_service, service_env, wait_for
from tests.signals import sine

PROMPT = "dark techno in A minor at 128 BPM"


def sse_events(response) -> list:
    """The ``data`` objects of a ``text/event-stream`` response, per the HTML standard's
    parsing rules (fields up to a blank line; comments start with a colon)."""
    events, data = [], []
    for line in response.iter_lines():
        if line == "":
            if data:
                events.append(json.loads("\n".join(data)))
            data = []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    return events


def follow(service, generation_id: str) -> list:
    with service.client.stream("GET", f"/api/v1/generations/{generation_id}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert body["instance"] == response.request.url.path
    return body


@pytest.fixture
def service(tmp_path, database_url):  # noqa: F811
    with running_service(tmp_path, service_env(tmp_path, database_url)) as running:
        yield running


# --------------------------------------------------------------------------- the main path


def test_submit_follow_download_and_find_by_key(service, tmp_path):
    accepted = service.submit(PROMPT, duration=8, seed=5)
    assert accepted["status"] in ("pending", "processing")  # the worker may have taken it already
    assert (accepted["queue_position"] is not None) == (accepted["status"] == "pending")
    assert accepted["job_id"].startswith("gen_") and accepted["links"]["events"].endswith("/events")

    events = follow(service, accepted["id"])
    assert events[-1]["status"] == "completed" and events[-1]["step"] is None
    order = ["pending", "processing", "completed"]
    assert [order.index(e["status"]) for e in events] == sorted(order.index(e["status"]) for e in events)
    assert all(set(e) >= {"status", "step", "queue_position"} for e in events)

    record = service.record(accepted["job_id"])  # the job id works as well as the record id
    assert record["id"] == accepted["id"] and record["status"] == "completed" and record["attempts"] == 1
    assert record["bpm"] == pytest.approx(128.0, abs=0.5)
    assert record["key"] in ("A minor", "C major") and record["camelot"] in ("8A", "8B")
    assert record["loudness_lufs"] == pytest.approx(-16.0, abs=0.2) or record["true_peak_dbtp"] >= -1.1
    assert "file_path" not in record  # no server paths in the API

    (path,) = output_files(tmp_path)
    assert path.name == f"{accepted['job_id']}.wav" == record["file_name"]
    on_disk = path.read_bytes()

    audio = service.client.get(accepted["links"]["audio"])
    assert audio.status_code == 200 and audio.content == on_disk
    assert audio.headers["content-type"] == "audio/wav" and audio.headers["accept-ranges"] == "bytes"
    assert audio.headers["content-disposition"] == f'inline; filename="{accepted["job_id"]}.wav"'
    data, rate = soundfile.read(io.BytesIO(audio.content))
    assert rate == 32000 and data.shape == (8 * 32000, 2)

    part = service.client.get(accepted["links"]["audio"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == on_disk[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(on_disk)}"
    tail = service.client.get(accepted["links"]["audio"], headers={"Range": "bytes=-44"})
    assert tail.status_code == 206 and tail.content == on_disk[-44:]
    beyond = service.client.get(accepted["links"]["audio"], headers={"Range": f"bytes={len(on_disk)}-"})
    assert beyond.status_code == 416

    etag = audio.headers["etag"]
    assert service.client.get(accepted["links"]["audio"], headers={"If-None-Match": etag}).status_code == 304
    attachment = service.client.get(accepted["links"]["audio"], params={"download": "true"})
    assert attachment.headers["content-disposition"].startswith("attachment;")

    if shutil.which("ffprobe"):  # an independent decoder reads what we served
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels,codec_name",
                                "-of", "json", "-"], input=audio.content, capture_output=True, check=True)
        stream = json.loads(probe.stdout)["streams"][0]
        assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("pcm_s16le", "32000", 2)

    # Search: by the measured key (any spelling), a BPM range, prompt text.
    found = service.client.get("/api/v1/generations",
                               params={"key": record["camelot"], "bpm_min": 120, "bpm_max": 135}).json()
    assert [item["id"] for item in found["items"]] == [accepted["id"]]
    other_key = "1B" if record["camelot"] != "1B" else "2B"
    assert service.client.get("/api/v1/generations", params={"key": other_key}).json()["items"] == []
    assert service.client.get("/api/v1/generations", params={"bpm_min": 129}).json()["items"] == []
    assert len(service.client.get("/api/v1/generations", params={"q": "TECHNO in a"}).json()["items"]) == 1
    assert service.client.get("/api/v1/generations", params={"q": "100%"}).json()["items"] == []


def test_peaks_describe_the_waveform(service, tmp_path):
    accepted = service.submit("ambient pads in C major at 80 BPM", duration=6, seed=2)
    service.wait_for_status(accepted["id"], "completed")
    (path,) = output_files(tmp_path)
    samples, _ = soundfile.read(path, dtype="int16")  # (frames, channels)
    response = service.client.get(accepted["links"]["peaks"], params={"points": 100})
    assert response.status_code == 200
    peaks = response.json()
    assert (peaks["version"], peaks["bits"], peaks["channels"], peaks["sample_rate"]) == (2, 16, 2, 32000)
    spp, length = peaks["samples_per_pixel"], peaks["length"]
    assert length == math.ceil(samples.shape[0] / spp) and length <= 100
    data = np.array(peaks["data"]).reshape(length, 2, 2)  # pixel, channel, (min, max)
    for pixel in (0, length // 2, length - 1):
        chunk = samples[pixel * spp:(pixel + 1) * spp].astype(int)
        for channel in range(2):
            assert abs(data[pixel, channel, 0] - chunk[:, channel].min()) <= 1
            assert abs(data[pixel, channel, 1] - chunk[:, channel].max()) <= 1
    assert service.client.get(accepted["links"]["peaks"], params={"points": 100},
                              headers={"If-None-Match": response.headers["etag"]}).status_code == 304


def test_pages_follow_the_cursor_newest_first(service):
    ids = [service.submit(f"house groove number {n} at 124 BPM", duration=2, seed=n)["id"] for n in range(3)]
    for generation_id in ids:
        service.wait_for_status(generation_id, "completed")
    seen, cursor = [], None
    while True:
        page = service.client.get("/api/v1/generations", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("body, field", [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "techno at 1000 BPM"}, "prompt"),
    ({"prompt": "x" * 2001}, "prompt"),
    ({"prompt": "dark \u001b[31mtechno"}, "prompt"),
    ({"prompt": "house", "duration": 0}, "duration"),
    ({"prompt": "house", "duration": 301}, "duration"),
    ({"prompt": "house", "duration": "long"}, "duration"),
    ({"prompt": "house", "seed": -1}, "seed"),
    ({"prompt": "house", "bit_depth": "PCM_8"}, "bit_depth"),
    ({"prompt": "house", "tempo": 120}, "tempo"),
    ({}, "prompt"),
])
def test_invalid_requests_are_422_naming_the_field(service, body, field):
    result = problem(service.client.post("/api/v1/generations", json=body), 422)
    assert field in [error["field"] for error in result["errors"]]
    assert service.client.get("/api/v1/generations").json()["items"] == []  # nothing recorded


@pytest.mark.parametrize("params, field", [
    ({"key": "H minor"}, "key"), ({"bpm_min": 140, "bpm_max": 120}, "bpm_min"), ({"bpm_min": -1}, "bpm_min"),
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "not-a-cursor"}, "cursor"),
    ({"status": "done"}, "status"),
])
def test_invalid_searches_are_422_naming_the_parameter(service, params, field):
    result = problem(service.client.get("/api/v1/generations", params=params), 422)
    assert field in [error["field"] for error in result["errors"]]


@pytest.mark.parametrize("path", ["", "/events", "/audio", "/peaks"])
def test_unknown_generations_are_404(service, path):
    problem(service.client.get(f"/api/v1/generations/gen_doesnotexist{path}"), 404)
    problem(service.client.post("/api/v1/generations/gen_doesnotexist/cancel"), 404)


# --------------------------------------------------------------------------- cancel


def test_cancel_a_running_job_leaves_no_file_and_a_finished_one_is_409(service, tmp_path):
    running = service.submit("slow ambient drone at 60 BPM", duration=300, seed=1)
    wait_for(lambda: service.record(running["id"])["step"] == "generate", 60, what="the job to start generating")
    answer = service.client.post(running["links"]["cancel"])
    assert answer.status_code == 202 and answer.json()["cancel_requested"] is True
    final = service.wait_for_status(running["id"], ("cancelled", "completed", "failed"))
    assert final["status"] == "cancelled"
    assert output_files(tmp_path) == []  # no file, not even a temporary one
    problem(service.client.post(running["links"]["cancel"]), 409)
    assert follow(service, running["id"])[-1]["status"] == "cancelled"


def test_queued_jobs_are_cancelled_at_once_and_the_queue_limit_is_429(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url, DGX_MUSIC_QUEUE_LIMIT="2")
    with running_service(tmp_path, env, "--workers", "0") as service:
        first, second = service.submit("house", duration=2), service.submit("techno", duration=2)
        assert (first["queue_position"], second["queue_position"]) == (1, 2)
        full = problem(service.client.post("/api/v1/generations", json={"prompt": "jazz"}), 429)
        assert "DGX_MUSIC_QUEUE_LIMIT" in full["detail"]
        assert int(service.client.post("/api/v1/generations", json={"prompt": "jazz"}).headers["retry-after"]) >= 1
        cancelled = service.client.post(first["links"]["cancel"])
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert service.record(second["id"])["queue_position"] == 1
        assert service.submit("jazz", duration=2)["queue_position"] == 2  # a place freed up
        health = service.client.get("/healthz").json()
        assert health["workers"] == 0 and health["status"] == "ok"


# --------------------------------------------------------------------------- keys


def test_with_api_keys_every_api_call_needs_one(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url, DGX_MUSIC_API_KEYS="first-key-123, second-key-456")
    with running_service(tmp_path, env, "--workers", "0") as service:
        assert service.client.get("/healthz").status_code == 200  # operations stay open
        for headers in ({}, {"Authorization": "Bearer wrong-key-000"}, {"Authorization": "Basic Zmlyc3Q="}):
            refused = problem(service.client.get("/api/v1/generations", headers=headers), 401)
            assert refused["type"].endswith("unauthorized")
        assert service.client.get("/api/v1/generations").headers["www-authenticate"].startswith("Bearer")
        ok = service.client.post("/api/v1/generations", json={"prompt": "house"},
                                 headers={"Authorization": "Bearer second-key-456"})
        assert ok.status_code == 202
        # GET may carry the key as access_token (an <audio> element cannot send headers)...
        assert service.client.get("/api/v1/generations", params={"access_token": "first-key-123"}).status_code == 200
        # ...but a POST may not.
        problem(service.client.post("/api/v1/generations", json={"prompt": "house"},
                                    params={"access_token": "first-key-123"}), 401)
    assert "API keys required" in service.process.output()


# --------------------------------------------------------------------------- uploads


def _wav_bytes(audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.T, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def test_uploads_are_measured_and_nothing_is_left(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url, DGX_MUSIC_MAX_UPLOAD_MB="0.5")
    with running_service(tmp_path, env, "--workers", "0") as service:
        post = lambda files, **kw: service.client.post("/api/v1/analyses", files=files, **kw)  # noqa: E731
        tone = _wav_bytes(sine(1000.0, -6.0, 2.0, sample_rate=44100), 44100)
        measured = post({"file": ("tone.wav", tone, "audio/wav")})
        assert measured.status_code == 200, measured.text
        body = measured.json()
        assert body["file_name"] == "tone.wav"
        assert (body["sample_rate"], body["channels"], body["duration_seconds"]) == (44100, 2, 2.0)
        assert body["peak_amplitude"] == pytest.approx(10 ** (-6 / 20), abs=1e-3)
        # EBU Tech 3341, test 1: a stereo 1 kHz sine at X dBFS (peak) reads X LUFS.
        assert body["loudness_lufs"] == pytest.approx(-6.0, abs=0.1)

        assert "empty" in problem(post({"file": ("empty.wav", b"", "audio/wav")}), 422)["detail"]
        truncated = problem(post({"file": ("cut.wav", tone[: len(tone) // 3], "audio/wav")}), 422)
        assert "truncated" in truncated["detail"] and "cut.wav" in truncated["detail"]
        not_audio = problem(post({"file": ("notes.txt", b"just some text, not audio" * 10, "text/plain")}), 422)
        assert "notes.txt" in not_audio["detail"] and not_audio["errors"][0]["field"] == "file"
        too_large = _wav_bytes(np.zeros((1, 400_000)), 44100)  # 800 kB > 0.5 MB
        problem(post({"file": ("big.wav", too_large, "audio/wav")}), 413)
        missing = problem(post({"other": ("tone.wav", tone, "audio/wav")}), 422)
        assert missing["errors"][0]["field"] == "file"
        problem(service.client.post("/api/v1/analyses", content=tone, headers={"Content-Type": "audio/wav"}), 415)
        problem(service.client.post("/api/v1/analyses", content=b"--x\r\ngarbage",
                                    headers={"Content-Type": "multipart/form-data; boundary=x"}), 422)
        assert list((tmp_path / "tmp").iterdir()) == []  # every upload removed


# --------------------------------------------------------------------------- operations


def test_health_and_metrics(service):
    from prometheus_client.parser import text_string_to_metric_families

    done = service.submit("house at 124 BPM", duration=2, seed=1)
    service.wait_for_status(done["id"], "completed")
    cancelled = service.submit("slow drone at 60 BPM", duration=300, seed=2)
    service.client.post(cancelled["links"]["cancel"])
    service.wait_for_status(cancelled["id"], "cancelled")
    health = service.client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok" and health.json()["queue"] == "ok"

    text = service.client.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    jobs = {s.labels["status"]: s.value for s in families["dgx_music_jobs"].samples}
    assert jobs == {"pending": 0, "processing": 0, "completed": 1, "failed": 0, "cancelled": 1}
    assert families["dgx_music_queue_depth"].samples[0].value == 0
    histogram = families["dgx_music_job_duration_seconds"]
    assert histogram.type == "histogram"
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.samples}
    assert samples[("dgx_music_job_duration_seconds_count", None)] == 1
    assert samples[("dgx_music_job_duration_seconds_bucket", "+Inf")] == 1
    assert 0 < samples[("dgx_music_job_duration_seconds_sum", None)] < 60
    openapi = service.client.get("/openapi.json").json()
    assert "/api/v1/generations/{generation_id}/events" in openapi["paths"]
    docs = service.client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "https://" not in docs.text  # everything the page loads comes from this server
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"):
        assert asset in docs.text and service.client.get(asset).status_code == 200


# --------------------------------------------------------------------------- stopping


def test_sigterm_lets_the_running_job_finish_and_exits_0(tmp_path, database_url):  # noqa: F811
    with running_service(tmp_path, service_env(tmp_path, database_url)) as service:
        job = service.submit("slow ambient drone at 60 BPM", duration=120, seed=4)
        wait_for(lambda: service.record(job["id"])["status"] == "processing", 60, what="the job to start")
        assert service.process.terminate(timeout=120) == 0
    output = service.process.output()
    assert "Traceback" not in output
    with running_service(tmp_path, service_env(tmp_path, database_url), "--workers", "0") as service:
        assert service.record(job["id"])["status"] == "completed"
    assert [p.name for p in output_files(tmp_path)] == [f"{job['job_id']}.wav"]


def test_sigterm_past_the_grace_period_requeues_and_a_restart_finishes(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url, DGX_MUSIC_SHUTDOWN_GRACE="0")
    with running_service(tmp_path, env) as service:
        job = service.submit("slow ambient drone at 60 BPM", duration=300, seed=4)
        wait_for(lambda: service.record(job["id"])["step"] == "generate", 60, what="the job to start")
        assert service.process.terminate(timeout=120) == 0
    with running_service(tmp_path, env, "--workers", "0") as service:
        stopped = service.record(job["id"])
    assert stopped["status"] == "pending" and "shutdown" in stopped["error"]
    assert output_files(tmp_path) == []
    with running_service(tmp_path, env) as service:
        final = service.wait_for_status(job["id"], ("completed", "failed"), timeout=180)
    assert final["status"] == "completed" and final["attempts"] == 2
    assert [p.name for p in output_files(tmp_path)] == [f"{job['job_id']}.wav"]


def children_of(pid: int) -> list:
    """Pids of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_kill_9_mid_job_then_restart_completes_the_job_once(tmp_path, database_url):  # noqa: F811
    env = service_env(tmp_path, database_url)
    with running_service(tmp_path, env) as service:
        job = service.submit("slow ambient drone at 60 BPM", duration=300, seed=6)
        wait_for(lambda: service.record(job["id"])["step"] == "generate", 60, what="the job to start")
        workers = children_of(service.process.pid)
        service.process.kill()  # SIGKILL to serve alone: its workers must not run on as orphans
        wait_for(lambda: not any(alive(pid) for pid in workers), 10, what="the worker processes to end")
    with running_service(tmp_path, env) as service:  # recovers at start: the job runs again
        final = service.wait_for_status(job["id"], ("completed", "failed"), timeout=180)
        listed = service.client.get("/api/v1/generations").json()["items"]
    assert final["status"] == "completed" and final["attempts"] == 2
    assert [item["id"] for item in listed] == [job["id"]]
    assert [p.name for p in output_files(tmp_path)] == [f"{job['job_id']}.wav"]


def test_a_busy_port_is_a_clear_error_and_exit_1(tmp_path):
    import socket

    from services.api.server import _is_loopback
    from tests.service import dgx_process

    assert [_is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "example")] == \
        [True, True, True, False, False]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = service_env(tmp_path, f"sqlite:///{tmp_path / 'history.db'}")
        with dgx_process(tmp_path, env, "serve", "--port", str(taken.getsockname()[1])) as serve:
            assert serve.popen.wait(60) == 1
    output = serve.output()
    assert "address already in use" in output.lower() and "Traceback" not in output
