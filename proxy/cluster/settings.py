"""`[cache.s3]` and `[cluster]`: validated, frozen settings for cluster mode.

Parsed from the TOML tables by `s3_settings` and `cluster_settings`; each error names the
key. Secrets are never in the file: only the names of the environment variables that hold
them (`access_key_env`, `secret_key_env`), read when the proxy starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from proxy.config_values import ConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# S3's own rule for bucket names (lowercase, digits, dots and hyphens; 3-63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9/_.-]{0,200}")


@dataclass(frozen=True)
class S3Settings:
    """Where files are stored: one bucket of an S3-compatible object store."""

    endpoint_url: str | None
    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    access_key_env: str | None = None
    secret_key_env: str | None = None

    def credentials(self, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """The key pair from the named environment variables (None: the SDK's default chain)."""
        env = os.environ if environ is None else environ
        if self.access_key_env is None and self.secret_key_env is None:
            return None
        values = []
        for key, name in (
            ("access_key_env", self.access_key_env),
            ("secret_key_env", self.secret_key_env),
        ):
            if name is None:
                raise ConfigError(f"cache.s3.{key}: needed with the other key's variable")
            value = env.get(name)
            if not value:
                raise ConfigError(f"cache.s3.{key}: environment variable {name} is not set")
            values.append(value)
        return values[0], values[1]


@dataclass(frozen=True)
class ClusterSettings:
    """How replicas find each other: one Redis, and this replica's own address."""

    redis_url: str
    advertise_url: str | None = None


def _string(table: Mapping[str, Any], key: str, where: str, default: str | None) -> str | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected str, got {value!r}")
    return value


def _env_name(table: Mapping[str, Any], key: str) -> str | None:
    name = _string(table, key, "cache.s3", None)
    if name is not None and not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"cache.s3.{key}: {name[:200]!r} is not an environment variable name")
    return name


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http(s) URL, got {value[:200]!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{key}: credentials in the URL are not allowed")
    return value.rstrip("/")


def _check_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown setting")


def s3_settings(table: object) -> S3Settings | None:
    """`[cache.s3]`, or None when the table is absent."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"cache.s3: expected a table, got {table!r}")
    known = {"endpoint_url", "bucket", "prefix", "region", "access_key_env", "secret_key_env"}
    _check_unknown(table, known, "cache.s3")
    bucket = _string(table, "bucket", "cache.s3", None)
    if bucket is None or not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"cache.s3.bucket: expected an S3 bucket name, got {bucket!r}")
    endpoint = _string(table, "endpoint_url", "cache.s3", None)
    prefix = _string(table, "prefix", "cache.s3", "") or ""
    if not _PREFIX.fullmatch(prefix) or ".." in prefix.split("/"):
        raise ConfigError(f"cache.s3.prefix: {prefix[:200]!r} is not a plain key prefix")
    return S3Settings(
        endpoint_url=_http_url(endpoint, "cache.s3.endpoint_url") if endpoint else None,
        bucket=bucket,
        prefix=prefix,
        region=_string(table, "region", "cache.s3", "us-east-1") or "us-east-1",
        access_key_env=_env_name(table, "access_key_env"),
        secret_key_env=_env_name(table, "secret_key_env"),
    )


def cluster_settings(table: object) -> ClusterSettings | None:
    """`[cluster]`, or None when the table is absent."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"cluster: expected a table, got {table!r}")
    _check_unknown(table, {"redis_url", "advertise_url"}, "cluster")
    redis_url = _string(table, "redis_url", "cluster", None)
    if redis_url is None or urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"cluster.redis_url: expected a redis:// URL, got {redis_url!r}")
    advertise = _string(table, "advertise_url", "cluster", None)
    return ClusterSettings(
        redis_url=redis_url,
        advertise_url=_http_url(advertise, "cluster.advertise_url") if advertise else None,
    )
