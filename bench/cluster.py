"""Cluster benchmarks: files from the S3 bucket through the proxy, cold files over replicas.

    .venv/bin/python -m bench.cluster [--rounds N] [--clients N]

Needs a real S3 server and Redis: the ones `.ci/run` exports (S3_ENDPOINT_URL, ...,
REDIS_URL), else it starts Ceph RGW and Redis with `.ci/services.sh` (installed by
`.ci/run`, or `apt-get install ceph-mon ceph-osd radosgw redis-server`).

1. Warm file: MB/s of one client reading a 50 MiB wheel (random bytes) through a replica
   whose local disk cannot keep it (`max_size` 1 MiB), so every read streams from the
   bucket, against a plain proxy serving it from its local disk; alternated, medians.
2. Cold file: wall time until `--clients` concurrent clients all have a fresh 20 MiB wheel,
   every client on one replica, against the clients spread over 3 replicas (one upstream
   download either way); a new file per round, alternated, medians.

Prints tables; never fails on a figure. The machine is shared and loaded: compare the
columns side by side, not with other runs. On one machine, 3 replicas cost more CPU in all
than 1 (each replica hashes and writes its own copy, the downloader also feeds its peers
over HTTP), so the cold column measures that overhead; what replicas buy, clients spread
over machines, one machine cannot show.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urljoin

from bench.common import (
    PROXY_READY,
    REPO_ROOT,
    ServerProcess,
    clean_environment,
    http_get,
    load_note,
    machine_note,
    print_table,
    proxy_config_toml,
    start_proxy,
    start_upstream,
)
from bench.dataset import DataRoot

sys.path.insert(0, str(REPO_ROOT / "tests"))
from e2e.cluster_services import ClusterServices, cluster_services

MIB = 1024 * 1024
WARM_BYTES = 50 * MIB
COLD_BYTES = 20 * MIB


def start_replica(
    workdir: Path, upstream_index_url: str, services: ClusterServices, bucket: str, *, keep: bool
) -> ServerProcess:
    """A proxy of the cluster (`bucket`, the services' Redis); `keep=False`: a local disk
    too small to keep any benchmark file, so every read comes from the bucket."""
    folder = workdir / f"replica-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    s3 = services.s3_section(bucket)
    config = proxy_config_toml(folder / "cache", upstream_index_url)
    config = config.replace("[cache]\n", "[cache]\n" + ("" if keep else 'max_size = "1MiB"\n'))
    config += "\n[cache.s3]\n" + "".join(f'{key} = "{value}"\n' for key, value in s3.items())
    config += f'\n[cluster]\nredis_url = "{services.redis_url}"\n'
    (folder / "config.toml").write_text(config)
    command = [sys.executable, "-m", "proxy", "serve", "--config", str(folder / "config.toml")]
    return ServerProcess(
        "replica",
        [*command, "--port", "0"],
        folder / "proxy.log",
        env=clean_environment(services.environment()),
        cwd=REPO_ROOT,
        ready_pattern=PROXY_READY,
    ).start()


def file_path(proxy: ServerProcess, project: str) -> str:
    page = http_get(f"{proxy.url}/simple/{project}/").decode()
    href = page.split('href="', 1)[1].split('"', 1)[0].split("#", 1)[0]
    return urljoin(f"{proxy.url}/simple/{project}/", href).removeprefix(proxy.url)


def read_seconds(url: str, size: int) -> float:
    started = time.perf_counter()
    body = http_get(url, timeout=300)
    elapsed = time.perf_counter() - started
    if len(body) != size:
        raise RuntimeError(f"{url}: got {len(body)} bytes, expected {size}")
    return elapsed


def bench_warm(workdir: Path, data: DataRoot, services: ClusterServices, rounds: int) -> None:
    bench_file = data.add_random("warmpkg", "warmpkg-1.0-py3-none-any.whl", "1.0", WARM_BYTES)
    data.publish("warmpkg", [bench_file])
    with ExitStack() as stack:
        upstream = stack.enter_context(start_upstream(data.root, workdir))
        index = f"{upstream.url}/simple/"
        local = stack.enter_context(start_proxy(index, workdir, "local", cpu=None))
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        replica = stack.enter_context(start_replica(workdir, index, services, bucket, keep=False))
        local_url = local.url + file_path(local, "warmpkg")
        bucket_url = replica.url + file_path(replica, "warmpkg")
        read_seconds(local_url, WARM_BYTES)  # now on the local disk
        read_seconds(bucket_url, WARM_BYTES)  # now in the bucket
        time.sleep(1.0)  # let the upload to the bucket finish
        timings: dict[str, list[float]] = {"bucket": [], "local": []}
        for _ in range(rounds):
            timings["bucket"].append(read_seconds(bucket_url, WARM_BYTES))
            timings["local"].append(read_seconds(local_url, WARM_BYTES))
    rows = [
        [name, WARM_BYTES / MIB / statistics.median(runs), WARM_BYTES / MIB / max(runs)]
        for name, runs in (
            ("S3 bucket via proxy", timings["bucket"]),
            ("local disk via proxy", timings["local"]),
        )
    ]
    print_table(
        f"Warm 50 MiB file, one client, {rounds} reads each, alternated",
        ["served from", "median MB/s", "slowest MB/s"],
        rows,
    )


def bench_cold(
    workdir: Path, data: DataRoot, services: ClusterServices, rounds: int, clients: int
) -> None:
    projects = [f"coldpkg{i}" for i in range(2 * rounds)]
    for project in projects:
        cold = data.add_random(project, f"{project}-1.0-py3-none-any.whl", "1.0", COLD_BYTES)
        data.publish(project, [cold])
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    timings: dict[int, list[float]] = {1: [], 3: []}
    with ExitStack() as stack:
        upstream = stack.enter_context(start_upstream(data.root, workdir))
        index = f"{upstream.url}/simple/"
        replicas = [
            stack.enter_context(start_replica(workdir, index, services, bucket, keep=True))
            for _ in range(3)
        ]
        order = iter(projects)
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for _ in range(rounds):
                for spread in (1, 3):
                    project = next(order)
                    path = file_path(replicas[0], project)
                    for replica in replicas[1:spread]:
                        file_path(replica, project)  # the page, so only the file is cold
                    urls = [replicas[i % spread].url + path for i in range(clients)]
                    started = time.perf_counter()
                    list(pool.map(lambda url: read_seconds(url, COLD_BYTES), urls))
                    timings[spread].append(time.perf_counter() - started)
    print_table(
        f"Cold 20 MiB file, {clients} concurrent clients, {rounds} files each, alternated",
        ["clients on", "median s", "slowest s"],
        [
            [f"{n} replica{'s' if n > 1 else ''}", statistics.median(t), max(t)]
            for n, t in timings.items()
        ],
    )


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        yield Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=12)
    args = parser.parse_args()
    print(machine_note())
    print(load_note(), "(a loaded machine: read the columns side by side)")
    with cluster_services() as services, workspace() as workdir:
        data = DataRoot(workdir / "data")
        bench_warm(workdir, data, services, args.rounds)
        bench_cold(workdir, data, services, args.rounds, args.clients)


if __name__ == "__main__":
    main()
