"""Tags in every format, read back by independent readers: mutagen (ID3, Vorbis comments),
wavinfo (bext v2, INFO, iXML, smpl), ffprobe, libebur128 for the loudness the tags state,
and byte-level checks of the ``acid`` and ``smpl`` chunks and Ogg page CRCs against their
published layouts (written out here, not taken from our code)."""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile

from services.audio import AudioExporter
from services.audio.tags import LoopPoints, TrackTags
from tests.signals import music_like, sine

mutagen = pytest.importorskip("mutagen")
wavinfo = pytest.importorskip("wavinfo")
pyebur128 = pytest.importorskip("pyebur128")
pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not installed")

SR = 32000
PROMPT = "deep house in A minor at 124 BPM"


def tags(**changes) -> TrackTags:
    base = TrackTags(
        title=PROMPT, comment="dgx-music gen_1, seed 3", date="2026-11-30T01:02:03", bpm=124.0, key="A minor",
        known=True, reference="gen_1",
        record={"bpm": 124.0, "key": "A minor", "beats_per_bar": 4, "first_downbeat_seconds": 0.0,
                "known_fields": ["bpm", "key", "beats_per_bar", "first_downbeat_seconds"], "seed": 3},
    )
    return base.replace(**changes)


def ebur128_file(path, channels: int = 2) -> dict:
    """Integrated, range, true peak, max momentary and short-term of the file decoded by
    ffmpeg, by libebur128."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f64le", "-ac", str(channels), "-"],
                         check=True, capture_output=True).stdout
    rate = int(json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                                         check=True, capture_output=True, text=True).stdout)["streams"][0]["sample_rate"])
    audio = np.frombuffer(raw, "<f8")
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(channels, rate, mode.MODE_I | mode.MODE_LRA | mode.MODE_TRUE_PEAK | mode.MODE_M | mode.MODE_S)
    momentary, short_term = -math.inf, -math.inf
    frames = audio.reshape(-1, channels)
    step = rate // 100
    for start in range(0, frames.shape[0], step):  # max momentary / short-term every 10 ms
        block = np.ascontiguousarray(frames[start:start + step])
        state.add_frames(block.ravel(), block.shape[0])
        if start + step >= 0.4 * rate:
            momentary = max(momentary, pyebur128.get_loudness_momentary(state))
        if start + step >= 3 * rate:
            short_term = max(short_term, pyebur128.get_loudness_shortterm(state))
    peak = max(pyebur128.get_true_peak(state, c) for c in range(channels))
    return {"integrated": pyebur128.get_loudness_global(state), "range": pyebur128.get_loudness_range(state),
            "true_peak": 20 * math.log10(peak), "momentary": momentary, "short_term": short_term}


@pytest.fixture(scope="module")
def groove():
    return music_like(8.0, SR, seed=7)


def export(tmp_path, groove, name, **options):
    return AudioExporter().export(groove, tmp_path / name, sample_rate=SR, preset="spotify", tags=tags(), **options)


# --- derived forms ---------------------------------------------------------------------------

@pytest.mark.parametrize("key, short, camelot", [
    ("A minor", "Am", "8A"), ("F# minor", "F#m", "11A"), ("C major", "C", "8B"), ("Bb major", "Bb", "6B"),
    ("eb min", "Ebm", "2A"), (None, None, None),
])
def test_keys_are_written_as_dj_software_reads_them(key, short, camelot):
    record = TrackTags(key=key)
    assert (record.key_short, record.camelot) == (short, camelot)


def test_replaygain_and_r128_gains_follow_their_references():
    class Loudness:  # an integrated loudness of -14 LUFS, true peak -1 dBTP
        integrated_lufs, true_peak_dbtp = -14.0, -1.0

    record = TrackTags(loudness=Loudness())
    assert record.replaygain_gain_db == pytest.approx(-4.0)  # ReplayGain 2.0: -18 LUFS
    assert record.replaygain_peak == pytest.approx(10 ** (-1 / 20))
    assert record.r128_track_gain == -9 * 256  # RFC 7845: Q7.8 to -23 LUFS
    assert TrackTags(bpm=float("nan")).bpm is None and TrackTags(bpm=123.456).bpm_text == "123.46"
    unknown = TrackTags()
    assert unknown.key_root_pitch_class is None and unknown.r128_track_gain is None and unknown.bpm_text is None
    assert TrackTags().software.startswith("dgx-music ")


# --- MP3: ID3v2.4 ------------------------------------------------------------------------------

@pytest.mark.parametrize("mp3_mode", ["CBR_320", "V0"])
def test_mp3_carries_id3v24_frames_that_mutagen_and_ffprobe_read(tmp_path, groove, mp3_mode):
    result = export(tmp_path, groove, "t.mp3", mp3_mode=mp3_mode)
    audio = mutagen.File(result.path)
    id3 = audio.tags
    assert id3.version == (2, 4, 0)
    assert str(id3["TIT2"]) == PROMPT and str(id3["TBPM"]) == "124" and str(id3["TKEY"]) == "Am"
    assert str(id3["TXXX:KEY"]) == "A minor" and str(id3["TXXX:CAMELOT_KEY"]) == "8A"
    assert str(id3["TXXX:TEMPO_SOURCE"]) == "procedural" and str(id3["TDRC"]).replace(" ", "T") == "2026-11-30T01:02:03"
    assert str(id3["COMM::eng"]) == "dgx-music gen_1, seed 3" and str(id3["TSSE"]).startswith("dgx-music")
    measured = ebur128_file(result.path)
    gain = float(str(id3["TXXX:REPLAYGAIN_TRACK_GAIN"]).removesuffix(" dB"))
    assert gain == pytest.approx(-18.0 - measured["integrated"], abs=0.2)
    assert float(str(id3["TXXX:REPLAYGAIN_TRACK_PEAK"])) == pytest.approx(10 ** (measured["true_peak"] / 20), rel=0.05)
    probed = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", result.path],
                                       check=True, capture_output=True, text=True).stdout)["format"]["tags"]
    assert probed["TBPM"] == "124" and probed["TKEY"] == "Am" and probed["title"] == PROMPT
    assert float(probed["duration"] if "duration" in probed else audio.info.length) == pytest.approx(8.0, abs=0.1)


# --- FLAC, Ogg Vorbis, Ogg Opus: Vorbis comments --------------------------------------------------

@pytest.mark.parametrize("name", ["t.flac", "t.ogg", "t.opus"])
def test_vorbis_comments_carry_bpm_key_and_gain(tmp_path, groove, name):
    result = export(tmp_path, groove, name)
    comments = mutagen.File(result.path).tags
    assert comments["TITLE"] == [PROMPT] and comments["BPM"] == ["124"] and comments["INITIALKEY"] == ["Am"]
    assert comments["KEY"] == ["A minor"] and comments["CAMELOT_KEY"] == ["8A"]
    assert comments["TEMPO_SOURCE"] == ["procedural"] and comments["DATE"] == ["2026-11-30T01:02:03"]
    measured = ebur128_file(result.path)
    if name == "t.opus":
        assert "REPLAYGAIN_TRACK_GAIN" not in comments  # RFC 7845 5.2.1: R128 gains only
        gain = int(comments["R128_TRACK_GAIN"][0])
        assert gain / 256 == pytest.approx(-23.0 - measured["integrated"], abs=0.2)
    else:
        gain = float(comments["REPLAYGAIN_TRACK_GAIN"][0].removesuffix(" dB"))
        assert gain == pytest.approx(-18.0 - measured["integrated"], abs=0.2)
        peak = float(comments["REPLAYGAIN_TRACK_PEAK"][0])
        assert peak == pytest.approx(10 ** (measured["true_peak"] / 20), rel=0.05)
    # The audio is untouched by the tagging: it decodes to the length written.
    assert soundfile.info(result.path).frames == result.frames


def _ogg_crc(data: bytes) -> int:
    """RFC 3533's CRC-32: polynomial 0x04C11DB7, initial 0, MSB first, no final XOR, bit by bit."""
    register = 0
    for byte in data:
        register ^= byte << 24
        for _ in range(8):
            register = ((register << 1) ^ 0x04C11DB7) if register & 0x80000000 else register << 1
            register &= 0xFFFFFFFF
    return register


def _ogg_pages(data: bytes):
    offset = 0
    while offset < len(data):
        assert data[offset:offset + 4] == b"OggS"
        segments = data[offset + 26]
        size = 27 + segments + sum(data[offset + 27: offset + 27 + segments])
        yield data[offset: offset + size]
        offset += size


@pytest.mark.parametrize("name", ["t.ogg", "t.opus"])
@pytest.mark.parametrize("comment_bytes", [100, 70000])
def test_ogg_pages_keep_valid_crcs_and_sequence_numbers(tmp_path, name, comment_bytes):
    """A 70 kB comment spans two header pages (more than 255 x 255 bytes), so the audio pages
    after it are renumbered: every page's CRC must still be right and the sequence unbroken."""
    result = AudioExporter().export(music_like(2.0, SR, seed=1), tmp_path / name, sample_rate=SR,
                                    tags=tags(comment="c" * comment_bytes))
    pages = list(_ogg_pages((tmp_path / name).read_bytes()))
    sequences = [struct.unpack_from("<I", page, 18)[0] for page in pages]
    assert sequences == list(range(len(pages)))
    for page in pages:
        zeroed = page[:22] + b"\0\0\0\0" + page[26:]
        assert struct.unpack_from("<I", page, 22)[0] == _ogg_crc(zeroed)
    assert mutagen.File(result.path).tags["COMMENT"] == ["c" * comment_bytes]
    decoded, _ = soundfile.read(result.path)
    assert decoded.shape[0] == result.frames


# --- WAV: INFO, id3, bext v2, acid, smpl, iXML ------------------------------------------------------

def _chunks(path) -> dict:
    data = open(path, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    found, offset = {}, 12
    while offset < len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        found[chunk_id] = data[offset + 8: offset + 8 + size]
        offset += 8 + size + size % 2
    assert offset == len(data)
    return found


@pytest.mark.parametrize("bit_depth", ["PCM_16", "PCM_24", "FLOAT"])
def test_wav_carries_bext_v2_loudness_from_our_meter(tmp_path, groove, bit_depth):
    result = export(tmp_path, groove, "t.wav", bit_depth=bit_depth)
    info = wavinfo.WavInfoReader(result.path)
    bext = info.bext
    assert bext.version == 2 and bext.description == PROMPT and bext.originator_ref == "gen_1"
    assert (bext.originator_date, bext.originator_time) == ("2026-11-30", "01:02:03")
    measured = ebur128_file(result.path)
    assert bext.loudness_value == pytest.approx(measured["integrated"], abs=0.05)
    assert bext.loudness_range == pytest.approx(measured["range"], abs=0.3)
    assert bext.max_true_peak == pytest.approx(measured["true_peak"], abs=0.2)
    assert bext.max_momentary_loudness == pytest.approx(measured["momentary"], abs=0.2)
    assert bext.max_shortterm_loudness == pytest.approx(measured["short_term"], abs=0.2)
    assert info.info.title == PROMPT and info.info.software.startswith("dgx-music")
    assert info.info.comment == "dgx-music gen_1, seed 3" and info.info.keywords == "Am; 8A; A minor"
    probed = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", result.path],
                                       check=True, capture_output=True, text=True).stdout)["format"]["tags"]
    assert (probed["title"], probed["IBPM"], probed["IKEY"]) == (PROMPT, "124", "Am; 8A; A minor")
    id3 = mutagen.File(result.path).tags  # the `id3 ` chunk
    assert str(id3["TBPM"]) == "124" and str(id3["TKEY"]) == "Am" and str(id3["TXXX:CAMELOT_KEY"]) == "8A"
    # The audio is what it would be without tags.
    plain = AudioExporter().export(groove, tmp_path / "plain.wav", sample_rate=SR, preset="spotify", bit_depth=bit_depth)
    assert np.array_equal(soundfile.read(result.path)[0], soundfile.read(plain.path)[0])


def test_wav_ixml_holds_the_analysis_record_marking_known_values(tmp_path, groove):
    result = export(tmp_path, groove, "t.wav")
    root = wavinfo.WavInfoReader(result.path).ixml.raw_xml.getroot()  # parsed by lxml
    assert root.tag == "BWFXML" and root.findtext("PROJECT") == "dgx-music" and root.findtext("NOTE") == PROMPT
    record = root.find("DGX_MUSIC")
    assert record.get("source") == "procedural"
    assert record.find("BPM").text == "124.0" and record.find("BPM").get("known") == "true"
    assert record.find("KEY").text == "A minor" and record.find("KEY").get("known") == "true"
    assert record.find("FIRST_DOWNBEAT_SECONDS").get("known") == "true"
    assert record.find("SEED").text == "3" and record.find("SEED").get("known") is None


def test_wav_acid_chunk_matches_the_published_layout(tmp_path, groove):
    """ACID chunk (Sonic Foundry): uint32 flags (0x01 one-shot, 0x02 root note set, 0x04
    stretch, 0x08 disk-based), uint16 root note (0x30 = C), uint16, float, uint32 beats,
    uint16 meter denominator, uint16 meter numerator, float tempo: 24 bytes."""
    result = export(tmp_path, groove, "t.wav")
    acid = _chunks(result.path)[b"acid"]
    assert len(acid) == 24
    flags, root, _, _, beats, denominator, numerator, tempo = struct.unpack("<IHHfIHHf", acid)
    assert flags & 0x01 and flags & 0x02 and flags & 0x04  # a one-shot (a whole track) with its root
    assert root == 0x30 + 9  # A
    assert beats == round(8.0 * 124 / 60) and (numerator, denominator) == (4, 4)
    assert tempo == pytest.approx(124.0)
    assert b"smpl" not in _chunks(result.path)  # only loops have loop points


def test_no_tags_means_the_plain_file(tmp_path, groove):
    result = AudioExporter().export(groove, tmp_path / "t.wav", sample_rate=SR)
    assert set(_chunks(result.path)) == {b"fmt ", b"data"}
    assert result.loudness is not None  # measured all the same


def test_wav_without_normalization_still_measures_for_its_tags(tmp_path):
    audio = sine(997.0, -20.0, 4.0, SR).astype(np.float32)
    result = AudioExporter().export(audio, tmp_path / "t.wav", sample_rate=SR, normalize=False, tags=tags())
    bext = wavinfo.WavInfoReader(result.path).bext
    assert bext.loudness_value == pytest.approx(ebur128_file(result.path)["integrated"], abs=0.05)


def test_a_silent_file_states_unknown_loudness(tmp_path):
    result = AudioExporter().export(np.zeros((2, SR), np.float32), tmp_path / "s.wav", sample_rate=SR,
                                    tags=tags(bpm=None, key=None))
    chunks = _chunks(result.path)
    loudness = struct.unpack_from("<5h", chunks[b"bext"], 256 + 32 + 32 + 10 + 8 + 8 + 2 + 64)
    assert loudness[0] == 0x7FFF and loudness[2] == 0x7FFF  # EBU Tech 3285 v2: unknown
    assert b"acid" not in chunks  # no tempo, no acid chunk


def test_rf64_size_is_updated_too(tmp_path):
    from services.audio.tags.riff import append_chunks

    path = tmp_path / "r.wav"
    soundfile.write(path, np.zeros((100, 2), np.int16), SR, format="RF64", subtype="PCM_16")
    with open(path, "r+b") as handle:
        append_chunks(handle, b"abcd\x02\x00\x00\x00xy")
    data = path.read_bytes()
    assert data[:4] == b"RF64" and struct.unpack_from("<Q", data, 20)[0] == len(data) - 8
    assert soundfile.info(path).frames == 100
    with open(path, "r+b") as handle:
        handle.write(b"JUNK")
        with pytest.raises(ValueError, match="not a RIFF WAVE file"):
            append_chunks(handle, b"")


def test_loops_carry_smpl_points_and_an_acid_loop(tmp_path):
    loop = LoopPoints(bars=2, start_frame=0, end_frame=SR * 4 - 1)
    audio = sine(440.0, -20.0, 4.0, SR).astype(np.float32)
    result = AudioExporter().export(audio, tmp_path / "l.wav", sample_rate=SR, tags=tags(loop=loop, bpm=120.0))
    smpl = wavinfo.WavInfoReader(result.path).smpl
    (points,) = smpl.sample_loops
    assert (points.start, points.end, points.loop_type) == (0, SR * 4 - 1, 0)
    assert smpl.sample_period_ns == round(1e9 / SR)
    raw = _chunks(result.path)[b"smpl"]  # RIFF smpl: nine uint32, then 6 uint32 per loop
    assert len(raw) == 36 + 24 and struct.unpack_from("<I", raw, 28)[0] == 1
    flags, _, _, _, beats, _, numerator, tempo = struct.unpack("<IHHfIHHf", _chunks(result.path)[b"acid"])
    assert not flags & 0x01 and beats == 8 and numerator == 4 and tempo == 120.0  # a loop of 2 x 4 beats
