"""Mirror benchmark: `variant-proxy mirror` of a 200-file set against a plain parallel
download of the same files straight from the upstream, in two scenarios.

    .venv/bin/python -m bench.mirror [--files 200] [--size-kib 512] [--jobs 8] [--repeats 3]
        [--scenario loopback|paced|both] [--latency-ms 20] [--rate-mib 32]

The set: `--files` projects of one wheel each (`--size-kib` of random bytes, with a PEP 658
metadata file naming the project, so uv resolves it without opening the wheel).

Scenarios (`--scenario`, default both), each with a fresh upstream process and its own table:
"loopback, unpaced" (the bench upstream as fast as loopback and sendfile go: the mirror's
own CPU decides), and "paced like a remote index" (the upstream waits `--latency-ms` before
each answer, page or file, and sends each file body no faster than `--rate-mib` MiB/s per
connection, see `bench.upstream`). Far from an index, what decides the fetch phase's speed
is whether the files are fetched in parallel, and the page round trips weigh on the whole
run.

Each repeat alternates: (1) `variant-proxy mirror -r reqs.txt --hw cpu=x86_64_v3` on a fresh
cache dir (an in-process proxy: uv resolves through its `/hw/` pages, then every wheel and
metadata file is fetched through it, `--jobs` at once, hashed, fsync-ed and kept); the fetch
phase's time is the one the mirror prints, the wall time includes resolution; (2) the same
wheels and metadata files fetched straight from the upstream by one aiohttp client, `--jobs`
at once, bytes discarded, (3) the same, each file written to disk as `pip download` would
(no fsync), and (4) the wheels only, as (2). Prints medians side by side, with each row's
speed against (2), (3) and (4) (medians of the per-repeat ratios); never fails on a figure.

Why (4): uv fetched every metadata file through the proxy while resolving, so the fetch
phase finds them in the cache and takes only the wheels from the upstream. Checked
(2026-12-01) with the upstream's access log turned on for one run of each scenario: it got
each of the 200 metadata files and each of the 200 wheels exactly once, every metadata
request before the first wheel request, which came after uv had finished; the fetch phase
asked the upstream for no metadata file.

Where the mirror's fetch time goes on loopback (py-spy on the mirror process during the
fetch phase only, per-phase timers, CPU seconds; 200 x 512 KiB, 8 at once, 2 shared cores):
the process is CPU-bound, its event loop the busiest thread. Fixed so far: each file's locate
revalidated its project page at the upstream (the mirror ran with page TTLs at 0; now a page
stays fresh for the run once asked about), two requests per project after the plan had just
revalidated it (a third of the fetch time);
threads started per download (one, then two: write and hash) made the loop wait for each
to run (about 12% of the loop's samples with one; now a shared pool of 8); a download slot
was held while the file was kept (fsync, index commit, rename and folder fsync: 22 of the
40 ms a slot was held; now the slot goes back once the upstream has sent the last byte,
and up to 4 x jobs files are in flight); the body went to the hashing and writing threads
piece by piece (now gathered: `proxy/store/piece_gatherer.py`). Left: the loop
reads the sockets (about a quarter of its samples, as in a plain download), creates each
temporary file (an ext4 create here costs 0.3-0.7 ms of CPU; done off the loop it did not
help), checks paths and reads the index for each lookup. Not helping: more files kept
behind the downloads (16 x jobs), or no durability at all (no fsync, SQLite
synchronous=OFF: 15% at most, mostly writeback moved past the end of the phase).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import (
    clean_environment,
    exit_on_sigterm,
    load_note,
    machine_note,
    print_table,
    start_upstream,
)
from bench.dataset import BenchFile, DataRoot

SUMMARY = re.compile(r"mirror: (\d+)/(\d+) files, ([\d.]+) (\w+) in ([\d.]+) s")


@dataclass(frozen=True)
class Scenario:
    title: str
    upstream_options: tuple[str, ...]  # bench.upstream's pacing flags


@dataclass(frozen=True)
class MirrorSet:
    """The files on disk and the requirements naming them."""

    data: DataRoot
    files: list[BenchFile]
    requirements: Path

    @property
    def wheel_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def urls(self, upstream: str, metadata: bool = True) -> list[str]:
        suffixes = ("", ".metadata") if metadata else ("",)
        return [
            f"{upstream}/files/{f.path.parent.name}/{f.filename}{suffix}"
            for f in self.files
            for suffix in suffixes
        ]


@dataclass
class Timings:
    """Seconds per repeat for each row, and the files the mirror reported."""

    mirror_fetch: list[float] = field(default_factory=list)
    mirror_wall: list[float] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    saved: list[float] = field(default_factory=list)
    wheels: list[float] = field(default_factory=list)
    mirrored_files: int = 0


def build_set(data: DataRoot, count: int, size: int) -> list[BenchFile]:
    files = []
    for n in range(count):
        project = f"mb-{n:03d}"
        wheel = data.add_random(project, f"mb_{n:03d}-1.0-py3-none-any.whl", "1.0", size)
        metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n\n".encode()
        data.file_path(project, wheel.filename + ".metadata").write_bytes(metadata)
        wheel = dataclasses.replace(wheel, metadata_sha256=hashlib.sha256(metadata).hexdigest())
        data.publish(project, [wheel])
        files.append(wheel)
    return files


def run_mirror(
    upstream_index: str, requirements: Path, cache: Path, jobs: int
) -> tuple[float, float, int]:
    """(fetch seconds as the mirror reports them, wall seconds, files fetched)."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "proxy", "mirror", "-r", str(requirements)),
            *("--upstream", upstream_index, "--cache-dir", str(cache)),
            *("--hw", "cpu=x86_64_v3", "--jobs", str(jobs)),
        ],
        capture_output=True,
        text=True,
        env=clean_environment(),
        check=False,
        timeout=900,
    )
    wall = time.perf_counter() - started
    matches = list(SUMMARY.finditer(done.stderr))
    match = matches[-1] if matches else None
    if done.returncode != 0 or match is None:
        raise SystemExit(f"mirror failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return float(match.group(5)), wall, int(match.group(1))


async def direct_download(
    urls: list[str], jobs: int, save_to: Path | None = None
) -> tuple[float, int]:
    """Fetch every URL, `jobs` at once; bytes discarded, or written to files in `save_to`
    (as `pip download` would: no fsync)."""
    limit = asyncio.Semaphore(jobs)
    total = 0

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal total
        async with limit, session.get(url) as response:
            response.raise_for_status()
            out = open(save_to / url.rsplit("/", 1)[1], "wb") if save_to else None  # noqa: SIM115
            async for chunk in response.content.iter_chunked(256 * 1024):
                total += len(chunk)
                if out is not None:
                    out.write(chunk)
            if out is not None:
                out.close()

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, url) for url in urls))
    return time.perf_counter() - started, total


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=512)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenario", choices=("loopback", "paced", "both"), default="both")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="paced: before answers")
    parser.add_argument("--rate-mib", type=float, default=32.0, help="paced: per connection")
    return parser.parse_args()


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    loopback = Scenario("loopback, unpaced", ())
    paced = Scenario(
        f"paced like a remote index ({args.latency_ms:g} ms before each answer, "
        f"{args.rate_mib:g} MiB/s per connection)",
        (
            *("--file-latency-ms", str(args.latency_ms), "--file-rate-mib", str(args.rate_mib)),
            *("--page-latency-ms", str(args.latency_ms)),
        ),
    )
    return {"loopback": [loopback], "paced": [paced], "both": [loopback, paced]}[args.scenario]


def main() -> None:
    args = parse_args()
    exit_on_sigterm()
    print(machine_note())
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as temp:
        work = Path(temp)
        data = DataRoot(work / "data")
        files = build_set(data, args.files, args.size_kib * 1024)
        requirements = work / "reqs.txt"
        requirements.write_text("".join(f"mb-{n:03d}\n" for n in range(args.files)))
        mirror_set = MirrorSet(data, files, requirements)
        for number, scenario in enumerate(scenarios(args)):
            print(f"\n{scenario.title}: {load_note()}", flush=True)
            timings = run_scenario(args, scenario, mirror_set, work / f"scenario-{number}")
            print_figures(args, scenario, mirror_set.wheel_bytes / 1e6, timings)
            print(f"after it: {load_note()}")


def run_scenario(
    args: argparse.Namespace, scenario: Scenario, mirror_set: MirrorSet, folder: Path
) -> Timings:
    """Every repeat of the scenario against one fresh upstream started with its pacing."""
    folder.mkdir()
    timings = Timings()
    with start_upstream(
        mirror_set.data.root, folder, options=scenario.upstream_options
    ) as upstream:
        for repeat in range(args.repeats):
            run_repeat(args, upstream.url, mirror_set, folder / f"repeat-{repeat}", timings)
    return timings


def run_repeat(
    args: argparse.Namespace, upstream: str, mirror_set: MirrorSet, folder: Path, timings: Timings
) -> None:
    """Mirror, then direct, then direct saved, then the wheels only, back to back; each
    starts with nothing dirty left to write back (`os.sync()` first): the saved run's 105 MB
    of unwritten files made the next repeat's mirror wait for them in its fsyncs."""
    folder.mkdir()
    os.sync()
    seconds, wall, timings.mirrored_files = run_mirror(
        f"{upstream}/simple/", mirror_set.requirements, folder / "cache", args.jobs
    )
    timings.mirror_fetch.append(seconds)
    timings.mirror_wall.append(wall)
    every_file = mirror_set.urls(upstream)
    os.sync()
    timings.direct.append(asyncio.run(direct_download(every_file, args.jobs))[0])
    (folder / "saved").mkdir()
    os.sync()
    took, _ = asyncio.run(direct_download(every_file, args.jobs, folder / "saved"))
    timings.saved.append(took)
    os.sync()
    took, got = asyncio.run(direct_download(mirror_set.urls(upstream, False), args.jobs))
    if got != mirror_set.wheel_bytes:
        raise SystemExit(f"the wheels came to {got} bytes, not {mirror_set.wheel_bytes}")
    timings.wheels.append(took)


def print_figures(
    args: argparse.Namespace, scenario: Scenario, mb: float, timings: Timings
) -> None:
    """Medians side by side; the ratios are medians of each repeat's own ratio (the runs of
    one repeat are back to back, so a load change on the shared machine hits both)."""

    def ratio(baseline: list[float], times: list[float]) -> str:
        return f"{statistics.median(b / t for b, t in zip(baseline, times, strict=True)):.2f}x"

    def row(name: str, times: list[float]) -> list[str]:
        median = statistics.median(times)
        return [
            name,
            f"{median:.2f}",
            f"{mb / median:.1f}",
            ratio(timings.direct, times),
            ratio(timings.saved, times),
            ratio(timings.wheels, times),
        ]

    print_table(
        f"{scenario.title}: {args.files} wheels of {args.size_kib} KiB + their metadata "
        f"({timings.mirrored_files} files, {mb:.1f} MB of wheels), {args.jobs} at once, "
        f"median of {args.repeats}",
        ["", "seconds", "MB/s", "vs direct", "vs saved", "vs wheels only"],
        [
            row("direct from the upstream (aiohttp)", timings.direct),
            row("direct, saved to files (no fsync)", timings.saved),
            row(
                "direct, the wheels only (what the fetch phase takes from the upstream)",
                timings.wheels,
            ),
            row("mirror: fetch phase", timings.mirror_fetch),
            row("mirror: whole run (uv resolve + fetch)", timings.mirror_wall),
        ],
    )


if __name__ == "__main__":
    main()
