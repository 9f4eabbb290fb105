"""`[[upstreams]] path = DIR`: the directory upstream's settings and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError, DirectorySettings, UpstreamSettings, settings_from_mapping


def parse(tmp_path: Path, *entries: dict[str, object]) -> tuple[object, ...]:
    settings = settings_from_mapping(
        {"upstreams": list(entries), "cache": {"dir": str(tmp_path / "cache")}}
    )
    return settings.upstreams


def test_a_path_entry_is_a_directory_upstream_beside_http_ones(tmp_path: Path) -> None:
    local, public = parse(
        tmp_path,
        {
            "name": "local",
            "path": str(tmp_path),
            "upload": True,
            "upload_token_env": "UPLOAD_TOKEN",
            "max_upload_size": "10MiB",
        },
        {"name": "public", "url": "http://127.0.0.1:1/simple/"},
    )
    assert isinstance(local, DirectorySettings) and isinstance(public, UpstreamSettings)
    assert local.path == tmp_path.resolve()
    assert (local.upload, local.upload_token_env, local.max_upload_size) == (
        True,
        "UPLOAD_TOKEN",
        10 * 1024**2,
    )
    assert local.ttl == 2.0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "/nonexistent/wheels"}, "upstreams[0].path: '/nonexistent/wheels' is not a"),
        ({"upload": True}, "upstreams[0].upload_token_env: needed with upload = true"),
        ({"upload_token_env": "not a name"}, "upstreams[0].upload_token_env"),
        ({"max_upload_size": "lots"}, "upstreams[0].max_upload_size"),
        ({"url": "http://127.0.0.1/"}, "upstreams[0].url: unknown setting"),
        ({"ttl": -1}, "upstreams[0].ttl: must not be negative"),
    ],
)
def test_bad_directory_settings_name_the_key(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(tmp_path, {"name": "local", "path": str(tmp_path), **entry})


def test_only_one_directory_may_take_uploads(tmp_path: Path) -> None:
    entry = {"path": str(tmp_path), "upload": True, "upload_token_env": "T"}
    with pytest.raises(ConfigError, match="only one directory upstream may have upload"):
        parse(tmp_path, {"name": "a", **entry}, {"name": "b", **entry})
