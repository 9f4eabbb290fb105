"""Real cluster services for the tests: Ceph RGW (S3) and Redis on loopback.

`.ci/run` starts them once (`.ci/services.sh start`) and exports their endpoints; a
developer's plain `pytest` starts them here when the binaries are installed. Tests that
need them skip, with the reason, only when neither is possible. Each test makes its own
bucket, so tests sharing one set of services stay apart.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "services.sh"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "redis-server", "redis-cli")
ENV_KEYS = ("S3_ENDPOINT_URL", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "REDIS_URL")


class ServicesUnavailable(Exception):
    """The services are installed but did not start; the message has their log's tail."""


@dataclass(frozen=True)
class ClusterServices:
    """Endpoints and keys of one S3 server and one Redis."""

    s3_endpoint_url: str
    s3_region: str
    access_key: str
    secret_key: str
    redis_url: str

    def environment(self) -> dict[str, str]:
        """The variables a proxy's `[cache.s3]` names for its keys."""
        return {"S3_ACCESS_KEY_ID": self.access_key, "S3_SECRET_ACCESS_KEY": self.secret_key}

    def s3_section(self, bucket: str, prefix: str = "") -> dict[str, str]:
        return {
            "endpoint_url": self.s3_endpoint_url,
            "bucket": bucket,
            "prefix": prefix,
            "region": self.s3_region,
            "access_key_env": "S3_ACCESS_KEY_ID",
            "secret_key_env": "S3_SECRET_ACCESS_KEY",
        }

    def s3_client(self) -> Any:
        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name=self.s3_region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


def fresh_bucket_name() -> str:
    return f"vp-test-{uuid.uuid4().hex[:16]}"


def _from_values(values: dict[str, str]) -> ClusterServices:
    return ClusterServices(
        s3_endpoint_url=values["S3_ENDPOINT_URL"],
        s3_region=values["S3_REGION"],
        access_key=values["S3_ACCESS_KEY_ID"],
        secret_key=values["S3_SECRET_ACCESS_KEY"],
        redis_url=values["REDIS_URL"],
    )


def unavailable_reason() -> str | None:
    """Why services cannot be started here (None: they can)."""
    if all(os.environ.get(key) for key in ENV_KEYS):
        return None
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        return (
            f"cluster services not installed ({', '.join(missing)} missing): "
            "`bash .ci/run` installs them (apt-get, as root)"
        )
    return None


@contextmanager
def cluster_services() -> Iterator[ClusterServices]:
    """The exported services, or ones started for the duration (stopped by pid after)."""
    if all(os.environ.get(key) for key in ENV_KEYS):
        yield _from_values({key: os.environ[key] for key in ENV_KEYS})
        return
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=180, check=False
    )
    if started.returncode != 0:
        raise ServicesUnavailable(f"the cluster services did not start: {started.stderr[-1500:]}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    try:
        yield _from_values(values)
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", values["SERVICES_DIR"]], timeout=60, check=False
        )


class PrivateRedis:
    """A redis-server of one test's own (to stop it without touching the shared one)."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
