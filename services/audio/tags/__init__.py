"""Tags and metadata chunks for every output format, written by small writers of our own
(no GPL library ships with the product): ID3v2.4, Vorbis comments in FLAC and Ogg, and WAV
chunks (LIST/INFO, ``id3 ``, BWF ``bext`` v2, ``acid``, ``smpl``, ``iXML``)."""

from .record import LoopPoints, TrackTags

__all__ = ["LoopPoints", "TrackTags", "tag_encoded"]


def tag_encoded(data: bytes, format_name: str, tags: TrackTags) -> bytes:
    """An encoded FLAC, MP3, Ogg Opus or Ogg Vorbis file (bytes) with ``tags`` written in."""
    from .id3 import id3_tag
    from .vorbis import tag_flac, tag_ogg

    if format_name == "MP3":
        return id3_tag(tags) + data
    if format_name == "FLAC":
        return tag_flac(data, tags.software, tags.vorbis_comments())
    return tag_ogg(data, format_name, tags.vorbis_comments(opus=format_name == "OPUS"))
