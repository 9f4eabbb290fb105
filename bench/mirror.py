"""Mirror benchmark: `variant-proxy mirror` of a 200-file set against a plain parallel
download of the same files straight from the upstream.

    .venv/bin/python -m bench.mirror [--files 200] [--size-kib 512] [--jobs 8] [--repeats 3]

The set: `--files` projects of one wheel each (`--size-kib` of random bytes, with a PEP 658
metadata file naming the project, so uv resolves it without opening the wheel). Each repeat
alternates: (1) `variant-proxy mirror -r reqs.txt --hw cpu=x86_64_v3` on a fresh cache dir
(an in-process proxy: uv resolves through its `/hw/` pages, then every wheel and metadata
file is fetched through it, `--jobs` at once, hashed, fsync-ed and kept); the fetch phase's
time is the one the mirror prints, the wall time includes resolution; (2) the same wheels and
metadata files fetched straight from the upstream by one aiohttp client, `--jobs` at once,
bytes discarded, and (3) the same, each file written to disk as `pip download` would (no
fsync). Prints medians side by side, with each row's speed against (2) and (3) (medians of
the per-repeat ratios); never fails on a figure.

Where the mirror's fetch time goes (py-spy on the mirror process during the fetch phase
only, per-phase timers, CPU seconds; 200 x 512 KiB, 8 at once, 2 shared cores): the
process is CPU-bound, its event loop the busiest thread. Fixed so far: each file's locate
revalidated its project page at the upstream (the mirror runs with page TTLs at 0), two
requests per project after the plan had just revalidated it (a third of the fetch time);
threads started per download (one, then two: write and hash) made the loop wait for each
to run (about 12% of the loop's samples with one; now a shared pool of 8); a download slot
was held while the file was kept (fsync, index commit, rename and folder fsync: 22 of the
40 ms a slot was held; now the slot goes back once the bytes are verified, and up to
4 x jobs files are in flight). Left: the loop
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
import re
import statistics
import subprocess
import sys
import tempfile
import time
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
UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=512)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    exit_on_sigterm()
    print(machine_note())
    print(load_note())
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as temp:
        work = Path(temp)
        data = DataRoot(work / "data")
        files = build_set(data, args.files, args.size_kib * 1024)
        requirements = work / "reqs.txt"
        requirements.write_text("".join(f"mb-{n:03d}\n" for n in range(args.files)))
        set_bytes = sum(f.size for f in files)
        with start_upstream(data.root, work) as upstream:
            index = f"{upstream.url}/simple/"
            urls = [
                f"{upstream.url}/files/mb-{n:03d}/{f.filename}{suffix}"
                for n, f in enumerate(files)
                for suffix in ("", ".metadata")
            ]
            mirror_fetch, mirror_wall, direct, saved = [], [], [], []
            for repeat in range(args.repeats):
                seconds, wall, count = run_mirror(
                    index, requirements, work / f"cache-{repeat}", args.jobs
                )
                mirror_fetch.append(seconds)
                mirror_wall.append(wall)
                took, _ = asyncio.run(direct_download(urls, args.jobs))
                direct.append(took)
                folder = work / f"saved-{repeat}"
                folder.mkdir()
                took, _ = asyncio.run(direct_download(urls, args.jobs, folder))
                saved.append(took)
    print_figures(args, count, set_bytes / 1e6, mirror_fetch, mirror_wall, direct, saved)


def print_figures(
    args: argparse.Namespace,
    count: int,
    mb: float,
    mirror_fetch: list[float],
    mirror_wall: list[float],
    direct: list[float],
    saved: list[float],
) -> None:
    """Medians side by side; the ratios are medians of each repeat's own ratio (the runs of
    one repeat are back to back, so a load change on the shared machine hits both)."""

    def row(name: str, times: list[float]) -> list[str]:
        median = statistics.median(times)
        return [
            name,
            f"{median:.2f}",
            f"{mb / median:.1f}",
            f"{statistics.median(d / t for d, t in zip(direct, times, strict=True)):.2f}x",
            f"{statistics.median(d / t for d, t in zip(saved, times, strict=True)):.2f}x",
        ]

    print_table(
        f"{args.files} wheels of {args.size_kib} KiB + their metadata ({count} files, "
        f"{mb:.1f} MB), {args.jobs} at once, median of {args.repeats}",
        ["", "seconds", "MB/s", "vs direct", "vs saved"],
        [
            row("direct from the upstream (aiohttp)", direct),
            row("direct, saved to files (no fsync)", saved),
            row("mirror: fetch phase", mirror_fetch),
            row("mirror: whole run (uv resolve + fetch)", mirror_wall),
        ],
    )


if __name__ == "__main__":
    main()
