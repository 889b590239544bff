"""services.config: every variable of the service, its default, and a clear refusal of a
bad value that names the variable."""

from __future__ import annotations

import pytest

from services.config import get_settings


def test_the_service_defaults():
    settings = get_settings({})
    assert (settings.api_keys, settings.queue_limit, settings.max_upload_mb) == ((), 100, 200.0)
    assert (settings.lease_seconds, settings.max_attempts, settings.shutdown_grace_seconds) == (30.0, 3, 30.0)
    assert (settings.heartbeat_seconds, settings.sweep_seconds) == (5.0, 10.0)


@pytest.mark.parametrize("environ, field, value", [
    ({"DGX_MUSIC_QUEUE_LIMIT": " 7 "}, "queue_limit", 7),
    ({"DGX_MUSIC_MAX_UPLOAD_MB": "0.5"}, "max_upload_mb", 0.5),
    ({"DGX_MUSIC_LEASE_SECONDS": "6"}, "lease_seconds", 6.0),
    ({"DGX_MUSIC_MAX_ATTEMPTS": "1"}, "max_attempts", 1),
    ({"DGX_MUSIC_SHUTDOWN_GRACE": "0"}, "shutdown_grace_seconds", 0.0),
    ({"DGX_MUSIC_API_KEYS": " key-one-111 ,, key-two-222 "}, "api_keys", ("key-one-111", "key-two-222")),
    ({"DGX_MUSIC_QUEUE_LIMIT": ""}, "queue_limit", 100),  # blank: the default
])
def test_values_are_read(environ, field, value):
    assert getattr(get_settings(environ), field) == value


@pytest.mark.parametrize("environ, message", [
    ({"DGX_MUSIC_QUEUE_LIMIT": "0"}, "DGX_MUSIC_QUEUE_LIMIT must be a finite number >= 1"),
    ({"DGX_MUSIC_QUEUE_LIMIT": "ten"}, "DGX_MUSIC_QUEUE_LIMIT must be a whole number"),
    ({"DGX_MUSIC_MAX_ATTEMPTS": "2.5"}, "DGX_MUSIC_MAX_ATTEMPTS must be a whole number"),
    ({"DGX_MUSIC_LEASE_SECONDS": "0.5"}, "DGX_MUSIC_LEASE_SECONDS must be a finite number >= 1"),
    ({"DGX_MUSIC_LEASE_SECONDS": "inf"}, "DGX_MUSIC_LEASE_SECONDS must be a finite number"),
    ({"DGX_MUSIC_MAX_UPLOAD_MB": "-1"}, "DGX_MUSIC_MAX_UPLOAD_MB must be a finite number"),
    ({"DGX_MUSIC_SHUTDOWN_GRACE": "soon"}, "DGX_MUSIC_SHUTDOWN_GRACE must be a number"),
    ({"DGX_MUSIC_API_KEYS": "short"}, "DGX_MUSIC_API_KEYS must hold keys of at least 8"),
    ({"DGX_MUSIC_API_KEYS": "with space inside"}, "DGX_MUSIC_API_KEYS must hold keys"),
])
def test_bad_values_are_refused_naming_the_variable(environ, message):
    with pytest.raises(ValueError, match=message):
        get_settings(environ)


def test_keys_never_show_in_a_repr():
    assert "secret-key-123" not in repr(get_settings({"DGX_MUSIC_API_KEYS": "secret-key-123"}))
