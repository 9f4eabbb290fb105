"""Page benchmarks: warm page throughput against proxpi, variant-aware pages, cold rewrites.

    .venv/bin/python -m bench.pages [--duration SECONDS] [--repeats N]

1. Warm pages: requests/s and p99 latency (wrk, 32 connections, one thread) for a project
   page of 1001 files (91 versions x 10 wheels + sdist), HTML and JSON by Accept, through
   variant-proxy and through proxpi (gunicorn with 2 threads, as its Docker image runs it),
   both in front of the same local upstream, after one warm-up request each.
2. Variant-aware pages: warm requests/s of a project with variant wheels (30 versions x (30
   variants incl. the null variant + 1 plain wheel + sdist + variants.json) = 990 files)
   with no fingerprint, with `/hw/cpu=x86_64_v3/`, and with a `Variant-Properties` header
   (the same 22 properties; and the 140 of `cpu=x86_64_v4,cuda=12.8,sm=9.0`).
3. Cold rewrites: the first fingerprinted request after a fresh start (page, 30
   variants.json and the rewrite, all cold), a second fingerprint on the now cached page,
   and the pure `proxy.variants.rewrite.legacy_view` timed in-process on the parsed page.

Servers run pinned to CPU 0, wrk to CPU 1 (see bench/common.py); each wrk figure is the best
of `--repeats` runs. Prints tables; never fails on a figure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import (
    HTML_ACCEPT,
    JSON_ACCEPT,
    BenchSetupError,
    ServerProcess,
    WrkPlan,
    WrkResult,
    best_wrk,
    exit_on_sigterm,
    http_get,
    load_note,
    machine_note,
    pinning_note,
    print_table,
    proxpi_gunicorn,
    require_wrk,
    start_proxpi,
    start_proxy,
    start_upstream,
)
from bench.dataset import DataRoot, add_plain_project, add_variant_project
from proxy.simple.api import parse_project_page
from proxy.simple.model import ProjectPage
from proxy.variants.fingerprint import expand_hardware_spec, parse_hardware_spec
from proxy.variants.metadata import parse_variants_json
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import VersionVariants, legacy_view, native_view, variant_versions

PLAIN_PROJECT = "bigproj"
VARIANT_PROJECT = "varproj"
CONNECTIONS = 32
FORMATS = (("HTML", HTML_ACCEPT), ("JSON", JSON_ACCEPT))
CPU_SPEC = "cpu=x86_64_v3"
BIG_SPEC = "cpu=x86_64_v4,cuda=12.8,sm=9.0"
COLD_REPEATS = 3
# proxpi's Docker image runs gunicorn with 2 threads; more threads do not help it (the GIL):
# 8 threads measured 139 req/s HTML and 386 req/s JSON, the same as 2.
PROXPI_THREADS = (2,)


@dataclass(frozen=True)
class Measured:
    label: str
    result: WrkResult
    page_bytes: int


def warm_page(
    label: str, url: str, plan: WrkPlan, headers: dict[str, str] | None = None
) -> Measured:
    """One warm-up request, then wrk at `CONNECTIONS` connections."""
    body = http_get(url, headers)
    result = best_wrk(url, plan, connections=CONNECTIONS, headers=headers)
    return Measured(label, result, len(body))


def _row(measured: Measured, baseline: float | None = None) -> list[object]:
    r = measured.result
    row: list[object] = [
        measured.label,
        f"{measured.page_bytes / 1024:.0f} KiB",
        round(r.requests_per_s),
        r.p50_ms,
        r.p99_ms,
        r.errors,
    ]
    if baseline is not None:
        row.append(f"{r.requests_per_s / baseline:.1f}x" if baseline else "-")
    return row


def bench_warm_pages(upstream: ServerProcess, workdir: Path, plan: WrkPlan) -> None:
    index_url = upstream.url + "/simple/"
    ours: dict[str, Measured] = {}
    with start_proxy(index_url, workdir) as proxy:
        for fmt, accept in FORMATS:
            ours[fmt] = warm_page(
                f"variant-proxy {fmt}",
                f"{proxy.url}/simple/{PLAIN_PROJECT}/",
                plan,
                {"Accept": accept},
            )
    theirs: list[tuple[str, Measured]] = []
    for threads in PROXPI_THREADS:
        with start_proxpi(index_url, workdir, threads=threads) as proxpi:
            for fmt, accept in FORMATS:
                measured = warm_page(
                    f"proxpi {threads} threads {fmt}",
                    f"{proxpi.url}/index/{PLAIN_PROJECT}/",
                    plan,
                    {"Accept": accept},
                )
                theirs.append((fmt, measured))
    rows: list[list[object]] = []
    for fmt, _ in FORMATS:
        rows.append(_row(ours[fmt]))
        for their_fmt, measured in theirs:
            if their_fmt == fmt:
                ratio = ours[fmt].result.requests_per_s / measured.result.requests_per_s
                rows.append([*_row(measured), f"variant-proxy is {ratio:.1f}x"])
    print_table(
        f"Warm page, {PLAIN_PROJECT} (1001 files), {CONNECTIONS} connections, {plan.describe()}",
        ["server", "page", "req/s", "p50 ms", "p99 ms", "errors", "vs proxpi"],
        [row if len(row) == 7 else [*row, ""] for row in rows],
    )


def bench_variant_pages(upstream: ServerProcess, workdir: Path, plan: WrkPlan) -> None:
    cpu = expand_hardware_spec(parse_hardware_spec(CPU_SPEC))
    big = expand_hardware_spec(parse_hardware_spec(BIG_SPEC))
    cases: Sequence[tuple[str, str, dict[str, str]]] = (
        ("no fingerprint", f"/simple/{VARIANT_PROJECT}/", {}),
        (f"/hw/{CPU_SPEC}/", f"/hw/{CPU_SPEC}/simple/{VARIANT_PROJECT}/", {}),
        (
            f"Variant-Properties ({len(cpu.properties)})",
            f"/simple/{VARIANT_PROJECT}/",
            {"Variant-Properties": cpu.header_value()},
        ),
        (
            f"Variant-Properties ({len(big.properties)})",
            f"/simple/{VARIANT_PROJECT}/",
            {"Variant-Properties": big.header_value()},
        ),
    )
    rows: list[list[object]] = []
    with start_proxy(upstream.url + "/simple/", workdir, name="proxy-variants") as proxy:
        for fmt, accept in FORMATS:
            baseline: float | None = None
            for label, path, extra in cases:
                measured = warm_page(
                    f"{fmt} {label}", proxy.url + path, plan, {"Accept": accept, **extra}
                )
                if baseline is None:
                    baseline = measured.result.requests_per_s
                rows.append(_row(measured, baseline))
    print_table(
        f"Warm rewritten page, {VARIANT_PROJECT} (990 files, 30 variants per version), "
        f"{CONNECTIONS} connections, {plan.describe()}",
        ["request", "page", "req/s", "p50 ms", "p99 ms", "errors", "vs none"],
        rows,
    )


def _time_request(url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    http_get(url, headers)
    return time.perf_counter() - started


def bench_cold_rewrite(upstream: ServerProcess, workdir: Path) -> None:
    first: list[float] = []
    second: list[float] = []
    warm: list[float] = []
    for attempt in range(COLD_REPEATS):
        name = f"proxy-cold{attempt}"
        with start_proxy(upstream.url + "/simple/", workdir, name=name) as proxy:
            headers = {"Accept": JSON_ACCEPT}
            first.append(
                _time_request(f"{proxy.url}/hw/{CPU_SPEC}/simple/{VARIANT_PROJECT}/", headers)
            )
            second.append(
                _time_request(f"{proxy.url}/hw/{BIG_SPEC}/simple/{VARIANT_PROJECT}/", headers)
            )
            warm.append(
                _time_request(f"{proxy.url}/hw/{BIG_SPEC}/simple/{VARIANT_PROJECT}/", headers)
            )
    print_table(
        f"Cold rewrite through the proxy, {VARIANT_PROJECT} (990 files), JSON, "
        f"{COLD_REPEATS} fresh starts",
        ["request", "median ms", "min ms", "max ms"],
        [
            [label, *_summary_ms(values)]
            for label, values in (
                (f"1st after start (/hw/{CPU_SPEC}/: page + 30 variants.json + rewrite)", first),
                (f"2nd, new fingerprint (/hw/{BIG_SPEC}/: rewrite only)", second),
                ("3rd, same fingerprint (rendered-page hit)", warm),
            )
        ],
    )


def _summary_ms(values: Sequence[float]) -> list[float]:
    return [statistics.median(values) * 1000, min(values) * 1000, max(values) * 1000]


def _loop_ms(function: Callable[[], object], min_seconds: float = 0.5) -> tuple[float, float, int]:
    """(mean ms, min ms, runs) of calling `function` repeatedly for about `min_seconds`."""
    times: list[float] = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 1000):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.fmean(times) * 1000, min(times) * 1000, len(times)


def parsed_variant_page(data: DataRoot) -> tuple[ProjectPage, dict[str, VersionVariants]]:
    body = (data.root / "pages" / f"{VARIANT_PROJECT}.json").read_bytes()
    page = parse_project_page(
        body, "application/vnd.pypi.simple.v1+json", f"http://127.0.0.1/simple/{VARIANT_PROJECT}/"
    )
    variants: dict[str, VersionVariants] = {}
    for version, source in variant_versions(page).items():
        if source is None:
            continue
        raw = data.file_path(VARIANT_PROJECT, source.filename).read_bytes()
        variants[version] = VersionVariants(parse_variants_json(raw), source=source)
    return page, variants


def bench_legacy_view(data: DataRoot) -> None:
    page, variants = parsed_variant_page(data)
    fingerprints: Sequence[tuple[str, Sequence[VariantProperty] | None]] = (
        ("none (no fingerprint)", None),
        ("/hw/none/ (empty)", ()),
        (CPU_SPEC, expand_hardware_spec(parse_hardware_spec(CPU_SPEC)).properties),
        (BIG_SPEC, expand_hardware_spec(parse_hardware_spec(BIG_SPEC)).properties),
        (
            "cpu=aarch64 (nothing matches)",
            expand_hardware_spec(parse_hardware_spec("cpu=aarch64")).properties,
        ),
    )
    rows: list[list[object]] = []
    for label, properties in fingerprints:
        count = "-" if properties is None else str(len(properties))
        view = legacy_view(page, variants, properties)
        mean_ms, min_ms, runs = _loop_ms(partial(legacy_view, page, variants, properties))
        winner = view.decisions[0].winner if view.decisions else None
        rows.append(
            [
                f"legacy_view {label}",
                count,
                len(view.page.files),
                winner or "-",
                mean_ms,
                min_ms,
                runs,
            ]
        )
    big = expand_hardware_spec(parse_hardware_spec(BIG_SPEC)).properties
    native = native_view(page, variants, big)
    mean_ms, min_ms, runs = _loop_ms(partial(native_view, page, variants, big))
    winner = native.decisions[0].winner if native.decisions else None
    rows.append(
        [
            f"native_view {BIG_SPEC}",
            str(len(big)),
            len(native.page.files),
            winner or "-",
            mean_ms,
            min_ms,
            runs,
        ]
    )
    print_table(
        f"Pure rewrite, in process: {VARIANT_PROJECT} ({len(page.files)} files, "
        f"{len(variants)} versions x 30 variants)",
        [
            "function, fingerprint",
            "properties",
            "files shown",
            "1st winner",
            "mean ms",
            "min ms",
            "runs",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=2, help="wrk runs per figure (best kept)")
    args = parser.parse_args()
    exit_on_sigterm()
    try:
        require_wrk()
        proxpi_gunicorn()
    except BenchSetupError as exc:
        raise SystemExit(f"bench.pages: {exc}") from None
    print(f"bench.pages: {machine_note()}; {pinning_note()}; {load_note()}")
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        workdir = Path(tmp)
        data = DataRoot(workdir / "data")
        add_plain_project(data, PLAIN_PROJECT)
        add_variant_project(data, VARIANT_PROJECT)
        with start_upstream(data.root, workdir) as upstream:
            plan = WrkPlan(args.duration, args.repeats)
            bench_warm_pages(upstream, workdir, plan)
            bench_variant_pages(upstream, workdir, plan)
            bench_cold_rewrite(upstream, workdir)
        bench_legacy_view(data)


if __name__ == "__main__":
    main()
