"""AudioFileManager against real files in tmp_path: paths, job ids, dates, file operations,
cleanup, statistics, listings and concurrent writers. Every expectation is known by
construction (the files, sizes, dates and mtimes the test itself creates)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from services.audio import AudioFileManager
from services.audio import _fsutil
from services.audio._datetree import walk_days
from services.audio.files import MAX_JOB_ID_LENGTH

DAY = dt.timedelta(days=1)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def manager(base: Path) -> AudioFileManager:
    return AudioFileManager(base)


@pytest.fixture
def today() -> dt.date:
    """Today's local date; skips in the (unlikely) case the test runs across midnight."""
    day = dt.date.today()
    yield day
    if dt.date.today() != day:
        pytest.skip("the local date changed during the test")


@pytest.fixture
def local_tz(monkeypatch):
    """Set the process's local time zone (POSIX TZ string) for one test."""

    def set_tz(value: str) -> None:
        monkeypatch.setenv("TZ", value)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


def folder(base: Path, day: dt.date) -> Path:
    return base / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"


def put(base: Path, day: dt.date, name: str, size: int = 10, mtime: float | None = None) -> Path:
    """Create ``name`` of ``size`` bytes (sparse) in the folder of ``day``; mtime in seconds if given."""
    path = folder(base, day) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.truncate(path, size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def put_junk(base: Path, old: dt.date) -> list[Path]:
    """Files under base that are not in the dated tree (each one must be ignored)."""
    y, m, d = f"{old.year:04d}", f"{old.month:02d}", f"{old.day:02d}"
    junk = [
        base / "notes.txt",
        base / y / "readme.wav",
        base / y / m / "month-level.wav",
        base / y / m / d / "sub" / "nested.wav",
        base / y / m / d / ".dgx-partial.part",
        base / "archive" / y / m / d / "elsewhere.wav",
        base / y / "1" / "01" / "not-padded.wav",
        base / y / "13" / "01" / "bad-month.wav",
        base / "2023" / "02" / "30" / "bad-day.wav",
        base / "\u0662\u0660\u0662\u0663" / "01" / "01" / "arabic-digits.wav",
    ]
    for path in junk:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk")
    return junk


# ---------------------------------------------------------------- construction


def test_default_base_dir_is_audio_output_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIO_OUTPUT_DIR", str(tmp_path / "configured"))
    assert AudioFileManager().base_dir == tmp_path / "configured"
    monkeypatch.delenv("AUDIO_OUTPUT_DIR")
    assert AudioFileManager().base_dir == Path("data/outputs")
    assert not (tmp_path / "configured").exists()  # nothing is created up front


@pytest.mark.parametrize(
    "value, error",
    [(5, TypeError), (b"bytes", TypeError), (3.5, TypeError), ("", ValueError)],
)
def test_bad_base_dir(value, error):
    with pytest.raises(error):
        AudioFileManager(value)


def test_info_and_repr(manager, base):
    info = manager.get_info()
    assert info == {
        "base_dir": str(base),
        "base_dir_exists": False,
        "layout": "YYYY/MM/DD/<job_id><extension>",
        "time_zone": "local",
        "default_extension": ".wav",
        "max_job_id_length": MAX_JOB_ID_LENGTH,
    }
    assert repr(manager) == f"AudioFileManager(base_dir={str(base)!r})"


def test_relative_base_dir_gives_relative_paths():
    manager = AudioFileManager("data/outputs")
    path = manager.get_output_path("gen_abc123", create_dirs=False, date=dt.datetime(2025, 11, 7))
    assert path == Path("data/outputs/2025/11/07/gen_abc123.wav")


# ------------------------------------------------------------ paths and dates


@pytest.mark.parametrize(
    "date, parts",
    [
        (dt.datetime(2025, 1, 15), ("2025", "01", "15")),
        (dt.datetime(2025, 11, 7, 23, 59, 59), ("2025", "11", "07")),
        (dt.date(2024, 2, 29), ("2024", "02", "29")),
        (dt.date(999, 12, 31), ("0999", "12", "31")),
        (dt.datetime(9999, 12, 31, 12), ("9999", "12", "31")),
    ],
)
def test_output_path_layout(manager, base, date, parts):
    path = manager.get_output_path("gen_custom", date=date)
    assert path == base.joinpath(*parts, "gen_custom.wav")
    assert path.parent.is_dir() and not path.exists()


def test_output_path_defaults_to_today_and_create_dirs(manager, base, today):
    path = manager.get_output_path("gen_today", create_dirs=False)
    assert path == folder(base, today) / "gen_today.wav"
    assert not base.exists()
    assert manager.get_output_path("gen_today") == path
    assert path.parent.is_dir()


@pytest.mark.parametrize(
    "extension, expected",
    [("wav", ".wav"), (".wav", ".wav"), (".WAV", ".wav"), ("Flac", ".flac"), ("mp3", ".mp3"), ("M4A", ".m4a")],
)
def test_extension_with_or_without_dot(manager, base, extension, expected):
    path = manager.get_output_path("job", extension=extension, date=dt.date(2025, 3, 1))
    assert path.name == "job" + expected


@pytest.mark.parametrize(
    "extension, error",
    [
        ("", ValueError),
        (".", ValueError),
        ("..wav", ValueError),
        (".tar.gz", ValueError),
        ("w/v", ValueError),
        ("wav ", ValueError),
        ("a" * 17, ValueError),
        ("w\x00v", ValueError),
        (None, TypeError),
        (3, TypeError),
    ],
)
def test_bad_extension(manager, extension, error):
    with pytest.raises(error) as info:
        manager.get_output_path("job", extension=extension, create_dirs=False)
    if error is ValueError:
        assert repr(extension) in str(info.value)


@pytest.mark.parametrize(
    "job_id",
    [
        "gen_abc123",
        "gen.v2",
        "name with spaces",
        "gen:1",
        "\u00fcn\u00efc\u00f6de-\u65e5\u672c",
        "a" * MAX_JOB_ID_LENGTH,
        "-dash",
        "x",
    ],
)
def test_good_job_ids_stay_inside_base(manager, base, job_id):
    path = manager.get_output_path(job_id, date=dt.date(2025, 6, 1))
    assert path.parent == folder(base, dt.date(2025, 6, 1))
    assert path.name == job_id + ".wav"
    assert path.resolve().is_relative_to(base.resolve())
    path.write_bytes(b"ok")  # the file system accepts the name
    assert manager.file_exists(job_id, date=dt.date(2025, 6, 1))


@pytest.mark.parametrize(
    "job_id",
    [
        "",
        ".",
        "..",
        ".hidden",
        "a/b",
        "../escape",
        "/etc/passwd",
        "sub/../x",
        "back\\slash",
        "C:\\temp\\x",
        "nul\x00byte",
        "new\nline",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "c1\x85control",
        "line\u2028separator",
        " leading",
        "trailing ",
        "a" * (MAX_JOB_ID_LENGTH + 1),
        "\u00e9" * 126,  # 126 characters but 252 UTF-8 bytes, 256 with ".wav": over NAME_MAX
        "lone\ud800surrogate",
    ],
)
def test_bad_job_ids_are_refused(manager, base, job_id):
    with pytest.raises(ValueError) as info:
        manager.get_output_path(job_id)
    assert repr(job_id) in str(info.value) or job_id == ""
    assert not base.exists()  # nothing was created for a refused id


@pytest.mark.parametrize("job_id", [None, b"gen", 42, Path("gen")])
def test_job_id_type(manager, job_id):
    with pytest.raises(TypeError):
        manager.get_output_path(job_id)


@pytest.mark.parametrize("create_dirs", [1, "yes", None])
def test_create_dirs_must_be_bool(manager, create_dirs):
    with pytest.raises(TypeError):
        manager.get_output_path("job", create_dirs=create_dirs)


@pytest.mark.parametrize("date", ["2025-01-15", 20250115, 1.5])
def test_date_type(manager, date):
    with pytest.raises(TypeError):
        manager.get_output_path("job", date=date)


@pytest.mark.parametrize(
    "tz, moment, expected",
    [
        # POSIX TZ strings: "UTC-14" is 14 h *ahead* of UTC, "UTC+12" 12 h behind.
        ("UTC-14", dt.datetime(2025, 1, 15, 12, tzinfo=dt.timezone.utc), dt.date(2025, 1, 16)),
        ("UTC+12", dt.datetime(2025, 1, 15, 12, tzinfo=dt.timezone.utc), dt.date(2025, 1, 15)),
        ("UTC+12", dt.datetime(2025, 1, 15, 11, 59, tzinfo=dt.timezone.utc), dt.date(2025, 1, 14)),
        ("UTC-14", dt.datetime(2025, 1, 15, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))), dt.date(2025, 1, 15)),
        ("UTC-14", dt.datetime(2025, 1, 15, 23, 30), dt.date(2025, 1, 15)),  # naive: its own date
        ("UTC+12", dt.datetime(2025, 1, 15, 0, 30), dt.date(2025, 1, 15)),
    ],
)
def test_aware_dates_use_local_time_zone(manager, base, local_tz, tz, moment, expected):
    local_tz(tz)
    assert manager.get_output_path("job", create_dirs=False, date=moment).parent == folder(base, expected)


def test_today_is_the_local_date_not_utc(manager, base, local_tz):
    local_tz("UTC-14")
    ahead = dt.date.today()
    path_ahead = manager.get_output_path("job", create_dirs=False)
    local_tz("UTC+12")
    behind = dt.date.today()
    path_behind = manager.get_output_path("job", create_dirs=False)
    # 26 hours apart: the two local dates always differ, by one or two days
    assert (ahead - behind).days in (1, 2)
    assert path_ahead.parent == folder(base, ahead)
    assert path_behind.parent == folder(base, behind)


def test_file_exists(manager, base):
    day = dt.date(2025, 11, 7)
    assert not manager.file_exists("gen_abc123", date=day)
    assert not base.exists()  # file_exists creates nothing
    put(base, day, "gen_abc123.wav")
    assert manager.file_exists("gen_abc123", date=day)
    assert manager.file_exists("gen_abc123", extension="WAV", date=day)
    assert not manager.file_exists("gen_abc123", extension=".flac", date=day)
    assert not manager.file_exists("gen_abc123", date=day + DAY)
    (folder(base, day) / "folder.wav").mkdir()
    assert not manager.file_exists("folder", date=day)
    with pytest.raises(ValueError):
        manager.file_exists("../gen_abc123", date=day)


# ------------------------------------------------------------- single files


@pytest.mark.parametrize("size", [0, 1, 4096, 1 << 20, 3 * (1 << 20) + 5])
def test_file_size(manager, tmp_path, size):
    path = tmp_path / "f.wav"
    path.write_bytes(b"\x01" * size)
    assert manager.get_file_size(path) == size
    assert manager.get_file_size(str(path)) == size
    assert manager.get_file_size_mb(path) == size / 2**20


def test_file_size_errors(manager, tmp_path):
    with pytest.raises(FileNotFoundError):
        manager.get_file_size(tmp_path / "missing.wav")
    with pytest.raises(IsADirectoryError):
        manager.get_file_size_mb(tmp_path)
    with pytest.raises(TypeError):
        manager.get_file_size(3)


def test_delete_file(manager, tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"x")
    assert manager.delete_file(path) is True
    assert not path.exists()
    assert manager.delete_file(path) is False
    assert manager.delete_file(str(tmp_path / "never.wav")) is False


def test_delete_file_refuses_directories_and_removes_links_only(manager, tmp_path):
    directory = tmp_path / "dir.wav"
    (directory / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        manager.delete_file(directory)
    assert (directory / "inside").is_dir()
    target = tmp_path / "target.wav"
    target.write_bytes(b"keep")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    assert manager.delete_file(link) is True
    assert not link.is_symlink() and target.read_bytes() == b"keep"
    dir_link = tmp_path / "dir-link"
    dir_link.symlink_to(directory)
    assert manager.delete_file(dir_link) is True  # the link, not the folder it points to
    assert (directory / "inside").is_dir()


# ------------------------------------------------------------- move and copy

OPERATIONS = ["move_file", "copy_file"]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".dgx-"))


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("as_str", [False, True])
def test_move_copy_create_folders(manager, tmp_path, operation, as_str):
    source = tmp_path / "src" / "file.wav"
    source.parent.mkdir()
    source.write_bytes(b"payload" * 1000)
    os.utime(source, (1_600_000_000, 1_600_000_000))
    source.chmod(0o640)
    destination = tmp_path / "new" / "deep" / "file.wav"
    result = getattr(manager, operation)(str(source) if as_str else source, str(destination) if as_str else destination)
    assert result == destination and isinstance(result, Path)
    assert destination.read_bytes() == b"payload" * 1000
    assert destination.stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE(destination.stat().st_mode) == 0o640
    assert source.exists() == (operation == "copy_file")
    assert leftovers(destination.parent) == []


@pytest.mark.parametrize("operation", OPERATIONS + ["move_by_copy"])
def test_existing_destination_is_refused_unless_overwrite(manager, tmp_path, operation):
    call = _fsutil.move_by_copy if operation == "move_by_copy" else getattr(manager, operation)
    source, destination = tmp_path / "a.wav", tmp_path / "out" / "b.wav"
    destination.parent.mkdir()
    source.write_bytes(b"new")
    destination.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        call(str(source), str(destination))
    assert source.read_bytes() == b"new" and destination.read_bytes() == b"old"
    assert leftovers(destination.parent) == []
    call(str(source), str(destination), overwrite=True)
    assert destination.read_bytes() == b"new"
    assert source.exists() == (operation == "copy_file")
    assert leftovers(destination.parent) == []


def test_move_by_copy_is_the_cross_device_path(tmp_path):
    """The path move_file takes across file systems (EXDEV), run directly on real files."""
    source, destination = tmp_path / "a.wav", tmp_path / "other" / "b.wav"
    source.write_bytes(b"x" * 3_000_000)
    os.utime(source, (1_500_000_000, 1_500_000_000))
    inode = source.stat().st_ino
    _fsutil.move_by_copy(str(source), str(destination))
    assert not source.exists()
    assert destination.read_bytes() == b"x" * 3_000_000
    assert destination.stat().st_mtime == 1_500_000_000
    assert destination.stat().st_ino != inode  # a real copy, not a rename
    assert leftovers(destination.parent) == []


def test_publish_race_keeps_existing_destination(tmp_path):
    """A destination that appears after the early check is still never overwritten."""
    source, destination = tmp_path / "a.wav", tmp_path / "b.wav"
    source.write_bytes(b"mine")
    destination.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        _fsutil._copy_and_publish(str(source), str(destination), str(tmp_path), overwrite=False)
    assert destination.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_move_copy_errors(manager, tmp_path, operation):
    call = getattr(manager, operation)
    destination = tmp_path / "out" / "x.wav"
    with pytest.raises(FileNotFoundError):
        call(tmp_path / "missing.wav", destination)
    assert not destination.parent.exists()
    source = tmp_path / "s.wav"
    source.write_bytes(b"s")
    with pytest.raises(IsADirectoryError):
        call(tmp_path, destination)
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):
        call(source, tmp_path / "folder", overwrite=True)
    with pytest.raises(ValueError):
        call(source, source, overwrite=True)
    assert source.read_bytes() == b"s"
    with pytest.raises(TypeError):
        call(source, 5)
    with pytest.raises(TypeError):
        call(source, destination, overwrite="yes")
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        call(dangling, destination)


def test_move_keeps_a_link_and_copy_follows_it(manager, tmp_path):
    target = tmp_path / "target.wav"
    target.write_bytes(b"content")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    copied = manager.copy_file(link, tmp_path / "copy.wav")
    assert not copied.is_symlink() and copied.read_bytes() == b"content"
    moved = manager.move_file(link, tmp_path / "moved" / "link.wav")
    assert moved.is_symlink() and os.readlink(moved) == str(target)
    assert not link.is_symlink() and target.read_bytes() == b"content"


# ------------------------------------------------------------------ cleanup

AGES = [-1, 0, 1, 2, 7, 8, 30, 31, 400]
"""Folder ages in days (today minus the folder's date); -1 is tomorrow."""


@pytest.fixture
def aged_tree(base, today):
    for age in AGES:
        put(base, today - age * DAY, f"age{age}.wav")
        put(base, today - age * DAY, f"age{age}.flac")
    return {f"age{age}.{ext}" for age in AGES for ext in ("wav", "flac")}


def tree_names(base: Path) -> set:
    return {p.name for p in base.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/*") if p.is_file()}


@pytest.mark.parametrize("days_old", [0, 1, 7, 30, 400, 10**9])
@pytest.mark.parametrize("dry_run", [True, False])
def test_cleanup_old_files(manager, base, aged_tree, days_old, dry_run):
    doomed = {name for name in aged_tree if int(name[3:].split(".")[0]) > days_old}
    assert manager.cleanup_old_files(days_old=days_old, dry_run=dry_run) == len(doomed)
    assert tree_names(base) == (aged_tree if dry_run else aged_tree - doomed)


def test_cleanup_defaults_are_thirty_days_dry_run(manager, base, aged_tree):
    assert manager.cleanup_old_files() == 2 * sum(age > 30 for age in AGES)
    assert tree_names(base) == aged_tree


@pytest.mark.parametrize("days_old, error", [(-1, ValueError), (1.0, TypeError), (True, TypeError), ("30", TypeError)])
def test_cleanup_bad_days_old(manager, days_old, error):
    with pytest.raises(error) as info:
        manager.cleanup_old_files(days_old=days_old)
    if error is ValueError:
        assert repr(days_old) in str(info.value)


def test_cleanup_dry_run_must_be_bool(manager):
    with pytest.raises(TypeError):
        manager.cleanup_old_files(days_old=1, dry_run=0)


def test_cleanup_touches_only_the_dated_tree(manager, base, tmp_path, today):
    old = today - 100 * DAY
    put(base, old, "doomed.wav")
    junk = put_junk(base, old)
    outside = tmp_path / "outside"  # looks like a year folder: 01/01/precious.wav
    (outside / "01" / "01").mkdir(parents=True)
    precious = outside / "01" / "01" / "precious.wav"
    precious.write_bytes(b"p")
    (base / "2001").symlink_to(outside, target_is_directory=True)  # a year folder that is a link
    (base / "2002" / "01").mkdir(parents=True)
    (base / "2002" / "01" / "01").symlink_to(outside / "01" / "01")  # a day folder that is a link
    (folder(base, old) / "link.wav").symlink_to(precious)  # a file that is a link

    assert manager.cleanup_old_files(days_old=0, dry_run=True) == 1
    assert manager.get_storage_stats()["total_files"] == 1
    assert manager.list_files() == [folder(base, old) / "doomed.wav"]
    assert manager.cleanup_old_files(days_old=0, dry_run=False) == 1
    assert not (folder(base, old) / "doomed.wav").exists()
    assert all(path.read_bytes() == b"junk" for path in junk)
    assert precious.read_bytes() == b"p" and (folder(base, old) / "link.wav").is_symlink()


def test_cleanup_of_missing_base(manager, base):
    assert manager.cleanup_old_files(days_old=0, dry_run=False) == 0
    assert manager.cleanup_empty_directories() == 0
    assert not base.exists()


def test_cleanup_empty_directories(manager, base, tmp_path, today):
    old = dt.date(2020, 5, 17)
    empty_days = [dt.date(2019, 1, 1), dt.date(2019, 1, 2), dt.date(2019, 12, 31), dt.date(2020, 5, 18)]
    for day in empty_days:
        folder(base, day).mkdir(parents=True)
    put(base, old, "keep.wav")
    folder(base, today).mkdir(parents=True)  # today's folder stays even when empty
    folder(base, today + 40 * DAY).mkdir(parents=True)  # so do future ones
    (base / "misc" / "empty").mkdir(parents=True)  # not date folders: untouched
    (base / "2018" / "notes").mkdir(parents=True)
    (tmp_path / "outside" / "01" / "01").mkdir(parents=True)
    (base / "2017").symlink_to(tmp_path / "outside", target_is_directory=True)

    # 2019/01/01, 2019/01/02, 2019/01, 2019/12/31, 2019/12, 2019, 2020/05/18
    assert manager.cleanup_empty_directories() == 7
    assert not (base / "2019").exists()
    assert sorted(p.name for p in (base / "2020" / "05").iterdir()) == ["17"]
    assert folder(base, today).is_dir() and folder(base, today + 40 * DAY).is_dir()
    assert (base / "misc" / "empty").is_dir() and (base / "2018" / "notes").is_dir()
    assert (tmp_path / "outside" / "01" / "01").is_dir() and (base / "2017").is_symlink()
    assert manager.cleanup_empty_directories() == 0


def test_cleanup_everything_keeps_base(manager, base, aged_tree, today):
    assert manager.cleanup_old_files(days_old=0, dry_run=False) == 2 * sum(age > 0 for age in AGES)
    removed = manager.cleanup_empty_directories()
    assert removed >= sum(age > 0 for age in AGES)  # every old day folder, plus emptied months/years
    assert base.is_dir()
    assert tree_names(base) == {"age0.wav", "age0.flac", "age-1.wav", "age-1.flac"}
    leftover_days = {p.relative_to(base) for p in base.glob("*/*/*")}
    assert leftover_days == {folder(base, today).relative_to(base), folder(base, today + DAY).relative_to(base)}


# --------------------------------------------------------------- statistics


def test_stats_of_empty_or_missing_tree(manager, base):
    expected = {
        "total_files": 0,
        "total_size_bytes": 0,
        "total_size_gb": 0.0,
        "oldest_file": None,
        "newest_file": None,
        "file_types": {},
    }
    assert manager.get_storage_stats() == expected
    base.mkdir()
    put_junk(base, dt.date(2021, 3, 4))
    assert manager.get_storage_stats() == expected


def test_stats_of_known_tree(manager, base):
    t0 = 1_700_000_000
    put(base, dt.date(2023, 5, 1), "b.wav", size=100, mtime=t0 + 50)
    put(base, dt.date(2023, 5, 1), "a.wav", size=200, mtime=t0 + 50)  # same mtime: name decides
    put(base, dt.date(2023, 5, 1), "c.flac", size=300, mtime=t0 + 99)
    put(base, dt.date(2023, 5, 2), "d.WAV", size=400, mtime=t0 - 10**6)  # older mtime, newer folder
    put(base, dt.date(2024, 1, 9), "e.Flac", size=500, mtime=t0)
    put(base, dt.date(2024, 1, 9), "f", size=600, mtime=t0)
    put(base, dt.date(2024, 1, 9), "g.wav", size=2**30, mtime=t0 - 5)  # sparse: 1 GiB, no disk used
    put_junk(base, dt.date(2023, 5, 1))
    stats = manager.get_storage_stats()
    total = 100 + 200 + 300 + 400 + 500 + 600 + 2**30
    assert stats == {
        "total_files": 7,
        "total_size_bytes": total,
        "total_size_gb": total / 2**30,
        "oldest_file": str(base / "2023" / "05" / "01" / "a.wav"),
        "newest_file": str(base / "2024" / "01" / "09" / "f"),
        "file_types": {".wav": 4, ".flac": 2, "": 1},
    }
    assert list(stats["file_types"]) == [".wav", ".flac", ""]


# ------------------------------------------------------------------ listings

T0 = 1_700_000_000
LISTED = [  # (folder date, name, mtime): the expected "newest first" order, by construction
    (dt.date(2025, 3, 2), "z.wav", T0 + 30),
    (dt.date(2025, 3, 2), "b.WAV", T0 + 20),  # same mtime as a.flac: the greater name first
    (dt.date(2025, 3, 2), "a.flac", T0 + 20),
    (dt.date(2025, 3, 2), "y.wav", T0 - 10**7),  # modified long ago, still in the newest folder
    (dt.date(2025, 3, 1), "m.wav", T0 + 10**7),  # modified later than all, but an older folder
    (dt.date(2025, 2, 28), "k.flac", T0),
    (dt.date(2024, 12, 31), "j.mp3", T0),
    (dt.date(2024, 12, 31), "i.wav", T0),
    (dt.date(2023, 1, 1), "h.wav", T0),
]


@pytest.fixture
def listed_tree(base):
    for day, name, mtime in reversed(LISTED):
        put(base, day, name, mtime=mtime)
    put_junk(base, dt.date(2025, 3, 2))
    return [folder(base, day) / name for day, name, _ in LISTED]


def test_list_files_order(manager, listed_tree):
    assert manager.list_files() == listed_tree
    assert all(isinstance(path, Path) for path in listed_tree)


@pytest.mark.parametrize("limit", [None, 0, 1, 3, 4, 5, len(LISTED), 100])
def test_list_files_limit(manager, listed_tree, limit):
    assert manager.list_files(limit=limit) == listed_tree[:limit]


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (dt.date(2025, 3, 1), dt.date(2025, 3, 1), ["m.wav"]),
        (dt.datetime(2025, 2, 28, 23, 59), dt.datetime(2025, 3, 1, 0, 0), ["m.wav", "k.flac"]),  # whole days
        (dt.date(2024, 12, 31), dt.date(2025, 2, 28), ["k.flac", "j.mp3", "i.wav"]),
        (dt.date(2025, 1, 1), None, ["z.wav", "b.WAV", "a.flac", "y.wav", "m.wav", "k.flac"]),
        (None, dt.date(2024, 12, 31), ["j.mp3", "i.wav", "h.wav"]),
        (dt.date(2023, 1, 2), dt.date(2024, 12, 30), []),
        (dt.date(2026, 1, 1), None, []),
    ],
)
def test_list_files_date_range_is_inclusive(manager, listed_tree, start, end, expected):
    assert [p.name for p in manager.list_files(start_date=start, end_date=end)] == expected


@pytest.mark.parametrize(
    "extension, limit, expected",
    [
        (".wav", None, ["z.wav", "b.WAV", "y.wav", "m.wav", "i.wav", "h.wav"]),
        ("WAV", 2, ["z.wav", "b.WAV"]),
        ("flac", None, ["a.flac", "k.flac"]),
        (".Mp3", None, ["j.mp3"]),
        ("ogg", None, []),
    ],
)
def test_list_files_extension_filter(manager, listed_tree, extension, limit, expected):
    assert [p.name for p in manager.list_files(extension=extension, limit=limit)] == expected


def test_list_files_combined_filters(manager, listed_tree):
    found = manager.list_files(start_date=dt.date(2025, 2, 1), end_date=dt.date(2025, 3, 2), limit=3, extension="wav")
    assert [p.name for p in found] == ["z.wav", "b.WAV", "y.wav"]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"limit": -1}, ValueError),
        ({"limit": 1.5}, TypeError),
        ({"limit": True}, TypeError),
        ({"start_date": "2025-01-01"}, TypeError),
        ({"end_date": 20250101}, TypeError),
        ({"start_date": dt.date(2025, 1, 2), "end_date": dt.date(2025, 1, 1)}, ValueError),
        ({"extension": "w.a.v"}, ValueError),
    ],
)
def test_list_files_bad_arguments(manager, kwargs, error):
    with pytest.raises(error):
        manager.list_files(**kwargs)


def test_listing_of_missing_base(manager):
    assert manager.list_files() == []
    assert manager.list_files(limit=5, extension="wav") == []


def test_walk_is_lazy_and_newest_first(base, listed_tree):
    """list_files(limit=...) can stop early because the walk opens folders one at a time."""
    days = walk_days(str(base), newest_first=True)
    assert next(days).day == dt.date(2025, 3, 2)
    shutil.rmtree(base / "2024")  # not visited yet: the walk simply never meets it
    shutil.rmtree(base / "2023")
    assert [d.day for d in days] == [dt.date(2025, 3, 1), dt.date(2025, 2, 28)]


def test_walk_never_enters_a_folder_swapped_for_a_link(base, tmp_path, listed_tree):
    """A folder replaced by a symbolic link after it was listed is still not entered (O_NOFOLLOW)."""
    outside = tmp_path / "outside"
    (outside / "01" / "01").mkdir(parents=True)
    (outside / "01" / "01" / "precious.wav").write_bytes(b"p")
    days = walk_days(str(base), newest_first=True)
    assert next(days).day == dt.date(2025, 3, 2)  # the year folders are listed by now
    (base / "2023").rename(tmp_path / "moved-away")
    (base / "2023").symlink_to(outside, target_is_directory=True)
    assert [d.day for d in days] == [dt.date(2025, 3, 1), dt.date(2025, 2, 28), dt.date(2024, 12, 31)]


def test_stats_and_listing_agree(manager, listed_tree):
    stats = manager.get_storage_stats()
    assert stats["newest_file"] == str(listed_tree[0])
    assert stats["oldest_file"] == str(listed_tree[-1])
    assert stats["total_files"] == len(listed_tree)


def test_files_vanishing_during_stat_are_skipped(base):
    from services.audio._datetree import day_entries, stat_entries

    for name in ("a.wav", "b.wav", "c.wav"):
        put(base, dt.date(2025, 1, 1), name, size=7)
    days = walk_days(str(base))
    entries = day_entries(next(days).fd)
    (folder(base, dt.date(2025, 1, 1)) / "b.wav").unlink()  # removed after the listing
    kept, stats = stat_entries(entries)
    days.close()
    assert sorted(e.name for e in kept) == ["a.wav", "c.wav"]
    assert [s.st_size for s in stats] == [7, 7]


# ------------------------------------------------------ concurrent processes

WORKERS = 4
ROUNDS = 12


def _writer(base: str, worker: int, barrier, errors) -> None:
    """Each round, all workers ask for paths on the same new day at the same moment and write."""
    try:
        manager = AudioFileManager(base)
        for round_ in range(ROUNDS):
            barrier.wait(timeout=30)
            day = dt.date(2030, 1, 1) + round_ * DAY
            path = manager.get_output_path(f"w{worker}_r{round_}", date=day)
            with open(path, "xb") as handle:
                handle.write(bytes([worker]) * 1000)
    except BaseException as exc:  # reported to the parent, which fails the test
        errors.put(f"worker {worker}: {exc!r}")


def _copier(source: str, destination: str, barrier, results) -> None:
    barrier.wait(timeout=30)
    try:
        AudioFileManager(os.path.dirname(source)).copy_file(source, destination)
        results.put("won")
    except FileExistsError:
        results.put("refused")
    except BaseException as exc:
        results.put(repr(exc))


def _fork_context():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    return multiprocessing.get_context("fork")


def _run_all(processes) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0


def test_concurrent_writers_on_the_same_day(base):
    context = _fork_context()
    barrier, errors = context.Barrier(WORKERS), context.Queue()
    _run_all([context.Process(target=_writer, args=(str(base), w, barrier, errors)) for w in range(WORKERS)])
    assert errors.empty(), errors.get()
    manager = AudioFileManager(base)
    assert manager.get_storage_stats()["total_files"] == WORKERS * ROUNDS
    for worker in range(WORKERS):
        for round_ in range(ROUNDS):
            path = folder(base, dt.date(2030, 1, 1) + round_ * DAY) / f"w{worker}_r{round_}.wav"
            assert path.read_bytes() == bytes([worker]) * 1000


def test_concurrent_copies_to_one_destination_one_wins(tmp_path):
    context = _fork_context()
    source = tmp_path / "source.wav"
    payload = os.urandom(1 << 20)
    source.write_bytes(payload)
    destination = tmp_path / "out" / "dest.wav"
    barrier, results = context.Barrier(WORKERS), context.Queue()
    args = (str(source), str(destination), barrier, results)
    _run_all([context.Process(target=_copier, args=args) for _ in range(WORKERS)])
    outcomes = sorted(results.get(timeout=10) for _ in range(WORKERS))
    assert outcomes == ["refused"] * (WORKERS - 1) + ["won"]
    assert destination.read_bytes() == payload
    assert leftovers(destination.parent) == []
