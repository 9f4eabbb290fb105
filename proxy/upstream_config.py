"""`[[upstreams]]`: where pages and files come from, as validated, frozen settings.

An entry with a `url` is an HTTP(S) simple index (`UpstreamSettings`), one with a `path` a
directory of wheels (`DirectorySettings`); with neither `[[upstreams]]` nor `--upstream`,
the index the local pip uses. Errors name the key (`upstreams[1].url: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.config_values import (
    ConfigError,
    check_name,
    check_unknown,
    check_url,
    env_name,
    expect,
    parse_size,
    seconds,
)
from proxy.pip_index import pip_index_url
from proxy.simple.names import normalize_name
from proxy.upstreams.source import split_credentials

DEFAULT_TIMEOUT = 30.0
_HTTP_KEYS = frozenset(
    {
        "name",
        "url",
        "ttl",
        "timeout",
        "username_env",
        "password_env",
        "token_env",
        "allowed_redirect_hosts",
    }
)


@dataclass(frozen=True)
class UpstreamSettings:
    """An HTTP(S) simple index (`[[upstreams]]` with a `url`)."""

    name: str
    url: str
    ttl: float
    timeout: float = DEFAULT_TIMEOUT
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    allowed_redirect_hosts: tuple[str, ...] = ()
    # Only for the embedded default: credentials that pip's own index URL carried. Kept out
    # of repr so they never reach a log line.
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


DEFAULT_DIRECTORY_TTL = 2.0
DEFAULT_MAX_UPLOAD_SIZE = 2 * 1024**3


@dataclass(frozen=True)
class DirectorySettings:
    """A directory of wheels and sdists (`[[upstreams]]` with a `path`); with `upload`, the
    local index that `/upload/` writes to, guarded by the token in `upload_token_env`."""

    name: str
    path: Path
    ttl: float = DEFAULT_DIRECTORY_TTL
    upload: bool = False
    upload_token_env: str | None = None
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE


# Every kind of upstream `[[upstreams]]` can name: a union of settings classes, each with a
# `name` and a `ttl`. A new kind adds its class here, its table parser in `_upstream_entry`,
# and its constructor in `proxy.upstreams.factory`.
UpstreamConfig = UpstreamSettings | DirectorySettings


def upstream_entry(table: Any, index: int, page_ttl: float) -> UpstreamConfig:
    """One `[[upstreams]]` table, parsed by its kind: HTTP (a `url`) or a directory (`path`)."""
    if isinstance(table, dict) and "path" in table:
        return _directory_upstream(table, index)
    return upstream_settings(table, index, page_ttl)


def _directory_upstream(table: dict[str, Any], index: int) -> DirectorySettings:
    where = f"upstreams[{index}]"
    known = {"name", "path", "ttl", "upload", "upload_token_env", "max_upload_size"}
    check_unknown(table, known, where)
    path = Path(expect(table["path"], str, f"{where}.path")).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{where}.path: {str(path)!r} is not a directory")
    name = check_name(table.get("name", f"local{index}"), f"{where}.name")
    upload = expect(table.get("upload", False), bool, f"{where}.upload")
    token_env = env_name(table.get("upload_token_env"), f"{where}.upload_token_env")
    if upload and token_env is None:
        raise ConfigError(f"{where}.upload_token_env: needed with upload = true")
    return DirectorySettings(
        name=name,
        path=path.resolve(),
        ttl=seconds(table.get("ttl", DEFAULT_DIRECTORY_TTL), f"{where}.ttl"),
        upload=upload,
        upload_token_env=token_env,
        max_upload_size=parse_size(
            table.get("max_upload_size", DEFAULT_MAX_UPLOAD_SIZE), f"{where}.max_upload_size"
        ),
    )


def upstream_settings(
    table: Any,
    index: int,
    page_ttl: float,
    where: str = "",
    extra_keys: frozenset[str] = frozenset(),
) -> UpstreamSettings:
    where = where or f"upstreams[{index}]"
    expect(table, dict, where)
    check_unknown(table, extra_keys | _HTTP_KEYS, where)
    if "url" not in table:
        raise ConfigError(f"{where}.url: missing")
    url = check_url(table["url"], f"{where}.url")
    name = check_name(
        table.get("name", urlsplit(url).hostname or f"upstream{index}"), f"{where}.name"
    )
    hosts = expect(table.get("allowed_redirect_hosts", []), list, f"{where}.allowed_redirect_hosts")
    for position, host in enumerate(hosts):
        expect(host, str, f"{where}.allowed_redirect_hosts[{position}]")
    ttl = float(expect(table.get("ttl", page_ttl), (int, float), f"{where}.ttl"))
    timeout = float(expect(table.get("timeout", DEFAULT_TIMEOUT), (int, float), f"{where}.timeout"))
    if ttl < 0 or timeout <= 0:
        raise ConfigError(f"{where}: ttl must be >= 0 and timeout > 0")
    return UpstreamSettings(
        name=name,
        url=url,
        ttl=ttl,
        timeout=timeout,
        username_env=env_name(table.get("username_env"), f"{where}.username_env"),
        password_env=env_name(table.get("password_env"), f"{where}.password_env"),
        token_env=env_name(table.get("token_env"), f"{where}.token_env"),
        allowed_redirect_hosts=tuple(h.lower() for h in hosts),
    )


def upstream_list(
    data: Mapping[str, Any],
    upstream_urls: Sequence[str],
    page_ttl: float,
    environ: Mapping[str, str] | None,
) -> tuple[UpstreamConfig, ...]:
    """`--upstream` flags, else `[[upstreams]]`, else the index the local pip uses."""
    if upstream_urls:
        upstreams: tuple[UpstreamConfig, ...] = tuple(
            upstream_settings({"url": url, "name": f"cli{i}" if i else "default"}, i, page_ttl)
            for i, url in enumerate(upstream_urls)
        )
    elif "upstreams" in data:
        tables = expect(data["upstreams"], list, "upstreams")
        upstreams = tuple(upstream_entry(t, i, page_ttl) for i, t in enumerate(tables))
    else:
        upstreams = (_pip_upstream(page_ttl, environ),)
    if not upstreams:
        raise ConfigError("upstreams: at least one upstream is needed")
    if sum(isinstance(u, DirectorySettings) and u.upload for u in upstreams) > 1:
        raise ConfigError("upstreams: only one directory upstream may have upload = true")
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise ConfigError(f"upstreams: duplicate upstream names in {names}")
    return upstreams


def _pip_upstream(page_ttl: float, environ: Mapping[str, str] | None) -> UpstreamSettings:
    """The embedded default: the index the local pip uses, with the credentials it carries."""
    pip_url = pip_index_url(environ)
    if pip_url is None:  # pragma: no cover - pip is always in a venv made by `venv`
        raise ConfigError("no upstream configured and pip is not importable; pass --upstream")
    url, credentials = split_credentials(pip_url)
    default = upstream_settings({"url": url, "name": "default"}, 0, page_ttl)
    return replace(default, basic_auth=credentials)


def upstream_pins(table: Any, upstream_names: Sequence[str]) -> dict[str, str]:
    """`[pins]`: project -> the one upstream that serves it."""
    pins: dict[str, str] = {}
    for project, target in expect(table, dict, "pins").items():
        expect(target, str, f"pins.{project}")
        if target not in upstream_names:
            raise ConfigError(f"pins.{project}: unknown upstream {target!r}")
        pins[normalize_name(project)] = target
    return pins
