"""Settings: the TOML config file and command-line overrides -> validated, frozen settings.

Every error names the offending key (`upstreams[1].url: ...`). Credentials are never read
from the file itself, only the names of the environment variables that hold them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import platformdirs

from proxy.simple.names import normalize_name
from proxy.upstreams.source import split_credentials

if TYPE_CHECKING:
    from proxy.backend_config import BackendSettings
    from proxy.cluster.settings import ClusterSettings, S3Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_PAGE_TTL = 600
DEFAULT_INDEX_TTL = 3600
DEFAULT_MAX_SIZE = 50 * 1024**3
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_PIP_CONFIG_LINE = re.compile(r"^([\w.-]+)='(.*)'$", re.MULTILINE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


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


@dataclass(frozen=True)
class ProfileSettings:
    name: str
    hw: str | None
    properties: tuple[str, ...] | None


@dataclass(frozen=True)
class ClientRule:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    profile: str


@dataclass(frozen=True)
class Settings:
    upstreams: tuple[UpstreamConfig, ...]
    cache_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    admin_token_env: str | None = None
    log_format: str = "json"
    access_log: bool = True
    max_size: int = DEFAULT_MAX_SIZE
    page_ttl: float = DEFAULT_PAGE_TTL
    index_ttl: float = DEFAULT_INDEX_TTL
    serve_stale: bool = True
    pins: Mapping[str, str] = field(default_factory=dict)
    default_profile: str | None = None
    detect_local: bool = False
    build_missing_variants_json: bool = False
    profiles: Mapping[str, ProfileSettings] = field(default_factory=dict)
    clients: tuple[ClientRule, ...] = ()
    s3: S3Settings | None = None
    cluster: ClusterSettings | None = None
    # Serve only what the cache holds; never open a connection to an upstream.
    offline: bool = False
    backends: tuple[BackendSettings, ...] = ()

    def upstream(self, name: str) -> UpstreamConfig:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)


def parse_size(text: object, key: str) -> int:
    """`"50GiB"` -> bytes. Plain integers are bytes; 0 means unbounded."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ConfigError(f"{key}: expected a size such as '50GiB', got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{key}: size must not be negative")
        return text
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ConfigError(f"{key}: expected a size such as '500MiB' or '50GiB', got {text!r}")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[(unit or "b").lower()])


def pip_index_url(environ: Mapping[str, str] | None = None) -> str:
    """The index the local pip uses: PIP_INDEX_URL, pip's config, pip's built-in default."""
    env = os.environ if environ is None else environ
    from_env = env.get("PIP_INDEX_URL", "").split()
    if from_env:
        return from_env[0]
    # `pip config list` is pip's stable interface to its configuration (its Python API is not).
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ),
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    values: dict[str, str] = dict(_PIP_CONFIG_LINE.findall(listing))
    for key in ("install.index-url", "global.index-url"):
        configured = values.get(key, "").split()
        if configured:
            return configured[0]
    try:
        from pip._internal.models.index import PyPI
    except ImportError as exc:  # pragma: no cover - pip is always in a venv made by `venv`
        raise ConfigError(
            "no upstream configured and pip is not importable; pass --upstream"
        ) from exc
    return str(PyPI.simple_url)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("variant-proxy"))


def _expect(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    return value


def _check_unknown(table: Mapping[str, Any], known: Set[str], where: str) -> None:
    for key in table:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}: unknown setting")


def _env_name(value: Any, key: str) -> str | None:
    if value is None:
        return None
    text = _expect(value, str, key)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ConfigError(f"{key}: {text!r} is not an environment variable name")
    return str(text)


def _check_url(url: Any, key: str) -> str:
    text = str(_expect(url, str, key))
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http(s) URL, got {text!r}")
    if parts.username or parts.password:
        raise ConfigError(
            f"{key}: credentials in the URL are not allowed; use username_env/"
            "password_env or token_env"
        )
    return text if text.endswith("/") else text + "/"


def _seconds(value: Any, key: str) -> float:
    seconds = float(_expect(value, (int, float), key))
    if seconds < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return seconds


def _cache_dir(value: Any) -> Path:
    if value is None:
        return default_cache_dir()
    if isinstance(value, Path):
        return value
    return Path(_expect(value, str, "cache.dir")).expanduser()


def _upstream_entry(table: Any, index: int, page_ttl: float) -> UpstreamConfig:
    """One `[[upstreams]]` table, parsed by its kind: HTTP (a `url`) or a directory (`path`)."""
    if isinstance(table, dict) and "path" in table:
        return _directory_upstream(table, index)
    return _upstream(table, index, page_ttl)


def _directory_upstream(table: dict[str, Any], index: int) -> DirectorySettings:
    where = f"upstreams[{index}]"
    known = {"name", "path", "ttl", "upload", "upload_token_env", "max_upload_size"}
    _check_unknown(table, known, where)
    path = Path(_expect(table["path"], str, f"{where}.path")).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{where}.path: {str(path)!r} is not a directory")
    name = str(_expect(table.get("name", f"local{index}"), str, f"{where}.name"))
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-'")
    upload = _expect(table.get("upload", False), bool, f"{where}.upload")
    token_env = _env_name(table.get("upload_token_env"), f"{where}.upload_token_env")
    if upload and token_env is None:
        raise ConfigError(f"{where}.upload_token_env: needed with upload = true")
    return DirectorySettings(
        name=name,
        path=path.resolve(),
        ttl=_seconds(table.get("ttl", DEFAULT_DIRECTORY_TTL), f"{where}.ttl"),
        upload=upload,
        upload_token_env=token_env,
        max_upload_size=parse_size(
            table.get("max_upload_size", DEFAULT_MAX_UPLOAD_SIZE), f"{where}.max_upload_size"
        ),
    )


def _upstream(
    table: Any,
    index: int,
    page_ttl: float,
    where: str = "",
    extra_keys: frozenset[str] = frozenset(),
) -> UpstreamSettings:
    where = where or f"upstreams[{index}]"
    _expect(table, dict, where)
    _check_unknown(
        table,
        extra_keys
        | {
            "name",
            "url",
            "ttl",
            "timeout",
            "username_env",
            "password_env",
            "token_env",
            "allowed_redirect_hosts",
        },
        where,
    )
    if "url" not in table:
        raise ConfigError(f"{where}.url: missing")
    url = _check_url(table["url"], f"{where}.url")
    name = str(
        _expect(
            table.get("name", urlsplit(url).hostname or f"upstream{index}"), str, f"{where}.name"
        )
    )
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-'")
    hosts = _expect(
        table.get("allowed_redirect_hosts", []), list, f"{where}.allowed_redirect_hosts"
    )
    for position, host in enumerate(hosts):
        _expect(host, str, f"{where}.allowed_redirect_hosts[{position}]")
    ttl = float(_expect(table.get("ttl", page_ttl), (int, float), f"{where}.ttl"))
    timeout = float(
        _expect(table.get("timeout", DEFAULT_TIMEOUT), (int, float), f"{where}.timeout")
    )
    if ttl < 0 or timeout <= 0:
        raise ConfigError(f"{where}: ttl must be >= 0 and timeout > 0")
    return UpstreamSettings(
        name=name,
        url=url,
        ttl=ttl,
        timeout=timeout,
        username_env=_env_name(table.get("username_env"), f"{where}.username_env"),
        password_env=_env_name(table.get("password_env"), f"{where}.password_env"),
        token_env=_env_name(table.get("token_env"), f"{where}.token_env"),
        allowed_redirect_hosts=tuple(h.lower() for h in hosts),
    )


def _profiles(table: Any) -> dict[str, ProfileSettings]:
    _expect(table, dict, "profiles")
    profiles: dict[str, ProfileSettings] = {}
    for name, body in table.items():
        where = f"profiles.{name}"
        if not _NAME_RE.fullmatch(name):
            raise ConfigError(
                f"profiles.{name if name.isprintable() else repr(name)}: profile names are "
                "letters, digits, '.', '_' or '-'"
            )
        _expect(body, dict, where)
        _check_unknown(body, {"hw", "properties"}, where)
        hw = body.get("hw")
        props = body.get("properties")
        if (hw is None) == (props is None):
            raise ConfigError(f"{where}: give exactly one of 'hw' or 'properties'")
        if hw is not None:
            _expect(hw, str, f"{where}.hw")
        if props is not None:
            _expect(props, list, f"{where}.properties")
            for position, item in enumerate(props):
                _expect(item, str, f"{where}.properties[{position}]")
        profiles[name] = ProfileSettings(name, hw, tuple(props) if props is not None else None)
    return profiles


def _clients(rules: Any, profiles: Mapping[str, ProfileSettings]) -> tuple[ClientRule, ...]:
    _expect(rules, list, "clients")
    result = []
    for index, rule in enumerate(rules):
        where = f"clients[{index}]"
        _expect(rule, dict, where)
        _check_unknown(rule, {"network", "profile"}, where)
        try:
            network = ipaddress.ip_network(
                _expect(rule.get("network"), str, f"{where}.network"), strict=False
            )
        except ValueError as exc:
            raise ConfigError(f"{where}.network: {exc}") from None
        profile = _expect(rule.get("profile"), str, f"{where}.profile")
        if profile not in profiles:
            raise ConfigError(f"{where}.profile: unknown profile {profile!r}")
        result.append(ClientRule(network, profile))
    return tuple(result)


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    host: str | None = None,
    port: int | None = None,
    upstream_urls: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    offline: bool = False,
) -> Settings:
    """Validate a parsed TOML document; keyword arguments are command-line overrides."""
    from proxy.backend_config import parse_backends

    _check_unknown(
        data,
        {
            "server",
            "cache",
            "upstreams",
            "pins",
            "variants",
            "profiles",
            "clients",
            "cluster",
            "backends",
        },
        "",
    )
    server = _expect(data.get("server", {}), dict, "server")
    _check_unknown(
        server,
        {"host", "port", "max_request_bytes", "admin_token_env", "log_format", "access_log"},
        "server",
    )
    cache = _expect(data.get("cache", {}), dict, "cache")
    _check_unknown(
        cache,
        {"dir", "max_size", "page_ttl", "index_ttl", "serve_stale", "s3", "offline"},
        "cache",
    )
    variants = _expect(data.get("variants", {}), dict, "variants")
    _check_unknown(
        variants, {"default_profile", "detect_local", "build_missing_variants_json"}, "variants"
    )

    page_ttl = _seconds(cache.get("page_ttl", DEFAULT_PAGE_TTL), "cache.page_ttl")
    index_ttl = _seconds(cache.get("index_ttl", DEFAULT_INDEX_TTL), "cache.index_ttl")
    upstreams: tuple[UpstreamConfig, ...]
    if upstream_urls:
        upstreams = tuple(
            _upstream({"url": url, "name": f"cli{i}" if i else "default"}, i, page_ttl)
            for i, url in enumerate(upstream_urls)
        )
    elif "upstreams" in data:
        tables = _expect(data["upstreams"], list, "upstreams")
        upstreams = tuple(_upstream_entry(t, i, page_ttl) for i, t in enumerate(tables))
    else:
        url, credentials = split_credentials(pip_index_url(environ))
        upstreams = (
            replace(
                _upstream({"url": url, "name": "default"}, 0, page_ttl), basic_auth=credentials
            ),
        )
    if not upstreams:
        raise ConfigError("upstreams: at least one upstream is needed")
    if sum(isinstance(u, DirectorySettings) and u.upload for u in upstreams) > 1:
        raise ConfigError("upstreams: only one directory upstream may have upload = true")
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise ConfigError(f"upstreams: duplicate upstream names in {names}")

    pins_table = _expect(data.get("pins", {}), dict, "pins")
    pins: dict[str, str] = {}
    for project, target in pins_table.items():
        _expect(target, str, f"pins.{project}")
        if target not in names:
            raise ConfigError(f"pins.{project}: unknown upstream {target!r}")
        pins[normalize_name(project)] = target

    profiles = _profiles(data.get("profiles", {}))
    default_profile = variants.get("default_profile")
    if default_profile is not None and default_profile not in profiles:
        raise ConfigError(f"variants.default_profile: unknown profile {default_profile!r}")

    log_format = _expect(server.get("log_format", "json"), str, "server.log_format")
    if log_format not in ("json", "text"):
        raise ConfigError("server.log_format: expected 'json' or 'text'")
    resolved_port = (
        port if port is not None else _expect(server.get("port", DEFAULT_PORT), int, "server.port")
    )
    if not 0 <= resolved_port <= 65535:
        raise ConfigError(f"server.port: {resolved_port} is not a TCP port")
    directory = cache_dir if cache_dir is not None else cache.get("dir")
    return Settings(
        upstreams=upstreams,
        cache_dir=_cache_dir(directory),
        host=host or _expect(server.get("host", DEFAULT_HOST), str, "server.host"),
        port=resolved_port,
        max_request_bytes=_expect(
            server.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
            int,
            "server.max_request_bytes",
        ),
        admin_token_env=_env_name(server.get("admin_token_env"), "server.admin_token_env"),
        log_format=log_format,
        access_log=_expect(server.get("access_log", True), bool, "server.access_log"),
        max_size=parse_size(cache.get("max_size", DEFAULT_MAX_SIZE), "cache.max_size"),
        page_ttl=page_ttl,
        index_ttl=index_ttl,
        serve_stale=_expect(cache.get("serve_stale", True), bool, "cache.serve_stale"),
        pins=pins,
        default_profile=default_profile,
        detect_local=_expect(variants.get("detect_local", False), bool, "variants.detect_local"),
        build_missing_variants_json=_expect(
            variants.get("build_missing_variants_json", False),
            bool,
            "variants.build_missing_variants_json",
        ),
        profiles=profiles,
        clients=_clients(data.get("clients", []), profiles),
        offline=offline or _expect(cache.get("offline", False), bool, "cache.offline"),
        **_cluster_sections(cache.get("s3"), data.get("cluster")),
        backends=parse_backends(data.get("backends", []), page_ttl),
    )


def _cluster_sections(s3: object, cluster: object) -> dict[str, Any]:
    """`[cache.s3]` and `[cluster]` (cluster mode), parsed by their own module."""
    from proxy.cluster.settings import cluster_settings, s3_settings

    return {"s3": s3_settings(s3), "cluster": cluster_settings(cluster)}


def load_settings(path: str | Path | None, **overrides: Any) -> Settings:
    """Read the TOML file (if any) and apply command-line overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return settings_from_mapping(data, **overrides)
