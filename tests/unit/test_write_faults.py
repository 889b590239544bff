"""The fault suite: full disks and failing writes lose nothing and publish nothing.

Two ways to fail a write: a real, small tmpfs (needs root to mount; skipped with the
reason otherwise) and fault injection that works anywhere (short writes, ENOSPC, EIO on
fsync, a failed rename). Each case asserts the error (an ``OSError`` naming the final path
and the cause), that nothing is at the final path, that no temporary file remains, and,
for a pipeline run, the history row's state and message.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile

from services.audio import AudioExporter, AudioFileManager, _atomic, _fsutil
from services.storage import dispose_engines

ROOT = Path(__file__).resolve().parents[2]
RATE = 32000


def noise(seconds: float = 1.0, channels: int = 2) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((channels, int(seconds * RATE))) * 0.1


def leftovers(folder: Path) -> list:
    """Every file under ``folder`` (temporary files start with a dot)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- a real full disk ------------------------------------------------------------------------


@pytest.fixture()
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a one-second stereo WAV (128 KB) does not fit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the injected faults below cover the same paths")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_export_onto_a_full_disk_raises_enospc_naming_the_path(full_disk):
    target = full_disk / "day" / "clip.wav"
    with pytest.raises(OSError) as raised:
        AudioExporter().export_wav(noise(), target, sample_rate=RATE)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(target) and "No space left on device" in str(raised.value)
    assert leftovers(full_disk) == []


@pytest.mark.parametrize("optimize", ["-O", "-OO"])
def test_export_onto_a_full_disk_fails_under_python_optimize(full_disk, optimize):
    """soundfile checks its writes with ``assert``, which -O removes: the check here stays."""
    code = (
        "import numpy as np, sys\n"
        "from services.audio import AudioExporter\n"
        "a = np.random.default_rng(1).standard_normal((2, 32000)) * 0.1\n"
        "try:\n"
        "    AudioExporter().export_wav(a, sys.argv[1], sample_rate=32000)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno, exc.filename)\n"
    )
    target = full_disk / "clip.wav"
    done = subprocess.run([sys.executable, optimize, "-c", code, str(target)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.split() == ["refused", str(errno.ENOSPC), str(target)], done.stderr
    assert leftovers(full_disk) == []


def test_copy_onto_a_full_disk_leaves_nothing(full_disk, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(200_000))
    manager = AudioFileManager(full_disk)
    for operation in (manager.copy_file, manager.move_file):
        with pytest.raises(OSError) as raised:
            operation(source, full_disk / "copy.bin")
        assert raised.value.errno == errno.ENOSPC and str(full_disk / "copy.bin") in str(raised.value)
        assert leftovers(full_disk) == [] and source.stat().st_size == 200_000


@pytest.fixture()
def history(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'generations.db'}")
    dispose_engines()
    yield
    dispose_engines()


def failed_record() -> dict:
    from services.storage import get_all_generations, get_session

    with get_session() as session:
        (record,) = [g.to_dict() for g in get_all_generations(session)]
    return record


def test_a_pipeline_run_onto_a_full_disk_records_a_readable_failure(full_disk, history):
    from services.pipeline import generate_track

    with pytest.raises(OSError, match="No space left on device"):
        generate_track("house at 120 BPM", duration=2.0, seed=1, file_manager=AudioFileManager(full_disk))
    record = failed_record()
    assert record["status"] == "failed"
    assert record["error_message"].startswith("No space left on device: " + str(full_disk))
    assert leftovers(full_disk) == []


def test_normalize_onto_a_full_disk_exits_1_and_leaves_no_out(full_disk, tmp_path):
    source = tmp_path / "in.wav"
    soundfile.write(source, noise().T, RATE)
    out = full_disk / "out.wav"
    done = subprocess.run([sys.executable, "-m", "services.cli", "normalize", str(source), str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "No space left on device" in done.stderr and str(out) in done.stderr
    assert leftovers(full_disk) == []


# --- injected faults, anywhere ----------------------------------------------------------------


class FaultyFile:
    """A real file object whose writes fail once ``budget`` bytes were written: ``mode``
    "enospc" raises ENOSPC, "short" writes part of the data and reports that count."""

    def __init__(self, raw, mode: str, budget: int) -> None:
        self.raw, self.mode, self.budget = raw, mode, budget

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) <= self.budget:
            self.budget -= len(data)
            return self.raw.write(data)
        if self.mode == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.raw.write(data[: self.budget])
        self.budget = 0
        return written

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.raw.close()


def inject_write_fault(monkeypatch, mode: str, budget: int = 1000) -> None:
    real_open, real_copy_open = _atomic._open_for_writing, _fsutil._open_for_copy
    monkeypatch.setattr(_atomic, "_open_for_writing", lambda fd: FaultyFile(real_open(fd), mode, budget))
    monkeypatch.setattr(_fsutil, "_open_for_copy", lambda fd: FaultyFile(real_copy_open(fd), mode, budget))


def fail_fsync(monkeypatch) -> None:
    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)


def fail_rename(monkeypatch) -> None:
    def rename(source, destination, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), source, None, destination)

    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, rename)
    monkeypatch.setattr(os, "link", rename)


FAULTS = {
    "enospc": (lambda mp: inject_write_fault(mp, "enospc"), errno.ENOSPC, "No space left on device"),
    "short write": (lambda mp: inject_write_fault(mp, "short"), errno.EIO, "short write"),
    "short write at the header rewrite": (lambda mp: inject_write_fault(mp, "short", 128_044), errno.EIO,
                                          "short write"),
    "EIO on fsync": (fail_fsync, errno.EIO, "Input/output error"),
    "rename refused": (fail_rename, errno.EACCES, "Permission denied"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_exporter_faults(tmp_path, monkeypatch, fault):
    inject, code, cause = FAULTS[fault]
    target = tmp_path / "out" / "clip.wav"
    target.parent.mkdir()
    inject(monkeypatch)
    with pytest.raises(OSError) as raised:
        AudioExporter().export_wav(noise(), target, sample_rate=RATE)
    assert raised.value.errno == code and cause in str(raised.value) and str(target) in str(raised.value)
    assert leftovers(tmp_path / "out") == []


def test_an_existing_file_survives_a_failed_export(tmp_path, monkeypatch):
    target = tmp_path / "clip.wav"
    target.write_bytes(b"the previous take")
    inject_write_fault(monkeypatch, "enospc")
    with pytest.raises(OSError, match="No space left on device"):
        AudioExporter().export_wav(noise(), target, sample_rate=RATE)
    assert target.read_bytes() == b"the previous take" and leftovers(tmp_path) == ["clip.wav"]


def test_batch_export_reports_each_failed_item(tmp_path, monkeypatch):
    from services.errors import BatchExportError

    inject_write_fault(monkeypatch, "short")
    with pytest.raises(BatchExportError) as raised:
        AudioExporter(max_workers=2).export_wav_batch([noise(), noise()], [tmp_path / "a.wav", tmp_path / "b.wav"])
    assert sorted(raised.value.failures) == [0, 1]
    assert all(isinstance(exc, OSError) and "short write" in str(exc) for exc in raised.value.failures.values())
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", ["enospc", "short write", "EIO on fsync"])
@pytest.mark.parametrize("operation", ["copy_file", "move_file"])
def test_file_manager_faults(tmp_path, monkeypatch, fault, operation):
    inject, code, cause = FAULTS[fault]
    source = tmp_path / "source.wav"
    source.write_bytes(os.urandom(50_000))
    destination = tmp_path / "tree" / "copy.wav"
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    inject(monkeypatch)
    with pytest.raises(OSError) as raised:
        getattr(AudioFileManager(tmp_path / "tree"), operation)(source, destination)
    assert raised.value.errno == code and cause in str(raised.value) and str(destination) in str(raised.value)
    assert leftovers(tmp_path / "tree") == [] and source.stat().st_size == 50_000


@pytest.mark.parametrize("fault", ["enospc", "short write", "EIO on fsync", "rename refused"])
def test_pipeline_faults_fail_the_record_with_the_cause(tmp_path, monkeypatch, history, fault):
    from services.pipeline import generate_track

    inject, _, cause = FAULTS[fault]
    outputs = tmp_path / "outputs"
    manager = AudioFileManager(outputs)
    real_export = AudioExporter.export

    def export_with_fault(self, *args, **kwargs):  # the history's own writes stay intact
        with pytest.MonkeyPatch.context() as patch:
            inject(patch)
            return real_export(self, *args, **kwargs)

    monkeypatch.setattr(AudioExporter, "export", export_with_fault)
    with pytest.raises(OSError):
        generate_track(f"house at 120 BPM {uuid.uuid4().hex[:4]}", duration=2.0, seed=1, file_manager=manager)
    record = failed_record()
    assert record["status"] == "failed"
    assert record["error_message"].startswith(cause) and str(outputs) in record["error_message"]
    assert leftovers(outputs) == []


def test_an_assertion_from_the_encoder_becomes_an_oserror(tmp_path, monkeypatch):
    """soundfile asserts that every frame was written; with no write error seen it is still EIO."""
    real_write = soundfile.SoundFile.write

    def asserting_write(self, data):
        real_write(self, data[:10])
        raise AssertionError

    monkeypatch.setattr(soundfile.SoundFile, "write", asserting_write)
    with pytest.raises(OSError, match="incomplete write") as raised:
        AudioExporter().export_wav(noise(), tmp_path / "clip.wav", sample_rate=RATE)
    assert raised.value.filename == str(tmp_path / "clip.wav") and leftovers(tmp_path) == []


def test_injected_enospc_fails_under_python_optimize(tmp_path):
    """Without root (no tmpfs), the same check under -O with an injected full disk."""
    code = (
        "import errno, sys, numpy as np\n"
        "from services.audio import AudioExporter, _atomic\n"
        "class Full:\n"
        "    def __init__(self, raw): self.raw = raw\n"
        "    def write(self, data): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    def __getattr__(self, name): return getattr(self.raw, name)\n"
        "real = _atomic._open_for_writing\n"
        "_atomic._open_for_writing = lambda fd: Full(real(fd))\n"
        "try:\n"
        "    AudioExporter().export_wav(np.zeros((2, 32000)) + 0.1, sys.argv[1], sample_rate=32000)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno, exc.filename)\n"
    )
    target = tmp_path / "clip.wav"
    done = subprocess.run([sys.executable, "-O", "-c", code, str(target)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.split() == ["refused", str(errno.ENOSPC), str(target)], done.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", ["enospc", "short write", "EIO on fsync", "rename refused"])
def test_normalize_faults_exit_1_and_leave_no_out(tmp_path, monkeypatch, capsys, fault):
    from services.cli import main

    inject, _, cause = FAULTS[fault]
    source = tmp_path / "in.wav"
    soundfile.write(source, noise().T, RATE)
    out = tmp_path / "out" / "loud.wav"
    out.parent.mkdir()
    inject(monkeypatch)
    assert main(["normalize", str(source), str(out)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("dgx-music: error:") and cause in error and str(out) in error
    assert leftovers(tmp_path / "out") == []


# --- the atomic layer's own branches -----------------------------------------------------------


def test_pending_output_passes_interrupts_and_other_errors_through(tmp_path):
    for exc, expected in ((KeyboardInterrupt(), KeyboardInterrupt), (ValueError("bad frames"), ValueError)):
        pending = _atomic.PendingOutput(tmp_path / "a.wav")
        with pytest.raises(expected):
            pending.fail(exc)
        assert leftovers(tmp_path) == []


def test_pending_output_names_the_path_of_an_unnamed_oserror(tmp_path):
    pending = _atomic.PendingOutput(tmp_path / "a.wav")
    with pytest.raises(OSError, match="Input/output error") as raised:
        pending.fail(OSError(errno.EIO, "Input/output error"))
    assert raised.value.filename == str(tmp_path / "a.wav") and leftovers(tmp_path) == []
    unnamed = _fsutil.name_path(OSError("no errno at all"), tmp_path / "b.wav")
    assert unnamed.errno == errno.EIO and "no errno at all" in str(unnamed) and "b.wav" in str(unnamed)


def test_a_file_shorter_on_disk_than_written_is_a_short_write(tmp_path):
    pending = _atomic.PendingOutput(tmp_path / "a.wav")
    pending.handle.write(b"x" * 100)
    pending.handle.end = 200  # as if the file system had dropped the tail
    with pytest.raises(OSError, match=r"short write \(100 of 200 bytes on disk\)"):
        pending.commit()
    assert leftovers(tmp_path) == []


def test_an_interrupt_during_commit_leaves_nothing(tmp_path, monkeypatch):
    pending = _atomic.PendingOutput(tmp_path / "a.wav")
    pending.handle.write(b"data")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        pending.commit()
    assert leftovers(tmp_path) == []


def test_a_failure_to_open_the_temporary_file_removes_it(tmp_path, monkeypatch):
    def refuse(fd):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(_atomic, "_open_for_writing", refuse)
    with pytest.raises(OSError, match="Too many open files"):
        _atomic.PendingOutput(tmp_path / "a.wav")
    assert leftovers(tmp_path) == []


def test_a_copy_interrupted_or_refused_by_its_source_leaves_nothing(tmp_path, monkeypatch):
    source = tmp_path / "source.bin"
    source.write_bytes(b"z" * 1000)
    real_open = _fsutil._open_for_copy

    def interrupted(fd):
        handle = real_open(fd)
        handle.write = lambda data: (_ for _ in ()).throw(KeyboardInterrupt())
        return handle

    monkeypatch.setattr(_fsutil, "_open_for_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fsutil.copy_file(str(source), str(tmp_path / "out" / "copy.bin"))
    assert leftovers(tmp_path / "out") == []
    monkeypatch.setattr(_fsutil, "_open_for_copy", real_open)
    real_builtin_open = open

    def source_unreadable(path, mode="r", *args, **kwargs):
        if str(path) == str(source) and "r" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_builtin_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", source_unreadable)
    with pytest.raises(PermissionError) as raised:
        _fsutil.copy_file(str(source), str(tmp_path / "out" / "copy.bin"))
    assert raised.value.filename == str(source) and leftovers(tmp_path / "out") == []
