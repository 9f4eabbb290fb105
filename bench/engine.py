"""Engine benchmarks: variant ranking, fingerprint parsing and expansion, hardware detection.

    .venv/bin/python -m bench.engine

In process (no server): time to rank one version's 50 variants against a 200-property
fingerprint (`proxy.variants.metadata.rank_variants`, and `best_variant`), to parse that version's
variants.json, to parse a 200-property `Variant-Properties` header, to expand hardware specs
(`expand_hardware_spec(parse_hardware_spec(...))`), and to detect this machine
(`proxy.detect.detect_hardware`, in process, and `variant-proxy detect` as a subprocess).
Prints tables; never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import (
    clean_environment,
    exit_on_sigterm,
    load_note,
    machine_note,
    print_table,
)
from proxy.detect import detect_hardware
from proxy.variants.fingerprint import (
    Fingerprint,
    expand_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
)
from proxy.variants.metadata import best_variant, parse_variants_json, rank_variants
from proxy.variants.properties import VariantProperty

FINGERPRINT_SPEC = "cpu=x86_64_v4,cuda=12.8,sm=9.0"
FINGERPRINT_SIZE = 200
N_VARIANTS = 50
EXTRA_NAMESPACE = "acme_accel"
SPECS = (
    "none",
    "cpu=x86_64_v3",
    "cpu=aarch64_9.0a",
    "cpu=x86_64_v4,cuda=12.8,sm=9.0",
    "cpu=x86_64_v4,cuda=12.8,sm=9.0,prop=acme_accel::isa::gen3,prop=acme_accel::isa::gen2",
)
DETECT_RUNS = 3


def big_fingerprint() -> Fingerprint:
    """The reference expansion of `FINGERPRINT_SPEC` (x86_64, nvidia) padded to 200 properties
    with a third namespace: 20 features x up to 5 values, most preferred first."""
    properties = list(expand_hardware_spec(parse_hardware_spec(FINGERPRINT_SPEC)).properties)
    feature = 0
    while len(properties) < FINGERPRINT_SIZE:
        for value in range(5, 0, -1):
            if len(properties) < FINGERPRINT_SIZE:
                properties.append(VariantProperty(EXTRA_NAMESPACE, f"f{feature}", f"v{value}"))
        feature += 1
    return Fingerprint(tuple(properties))


def variants_document(seed: int = 825) -> dict[str, Any]:
    """50 variants over the fingerprint's namespaces: 1-4 features each, some with several
    values, about a third needing a value the fingerprint lacks; plus the null variant."""
    rng = random.Random(seed)
    x86_levels = ["v1", "v2", "v3", "v4"]
    x86_flags = ["avx2", "avx512f", "avx512_vnni", "fma", "bmi2", "amx_tile"]
    sm_archs = ["75_real", "80_real", "86_real", "89_real", "90_real", "100_real", "120_real"]
    cuda_bounds = ["11.8", "12.0", "12.4", "12.6", "12.8", "12.9", "13.0"]
    variants: dict[str, dict[str, dict[str, list[str]]]] = {"null": {}}
    for index in range(N_VARIANTS - 1):
        described: dict[str, dict[str, list[str]]] = {}
        if rng.random() < 0.8:
            described["x86_64"] = {"level": [rng.choice(x86_levels)]}
            if rng.random() < 0.5:
                described["x86_64"][rng.choice(x86_flags)] = ["on"]
        if rng.random() < 0.6:
            described["nvidia"] = {
                "sm_arch": sorted(rng.sample(sm_archs, rng.randint(1, 3))),
                "cuda_version_lower_bound": [rng.choice(cuda_bounds)],
            }
        if rng.random() < 0.4 or not described:
            feature = f"f{rng.randint(0, 24)}"
            described[EXTRA_NAMESPACE] = {feature: [f"v{rng.randint(1, 6)}"]}
        variants[f"var{index:02d}"] = described
    return {
        "$schema": "https://variants-schema.example/v0.0.3.json",
        "default-priorities": {"namespace": ["nvidia", "x86_64", EXTRA_NAMESPACE]},
        "variants": variants,
    }


def loop_us(function: Callable[[], object], seconds: float = 1.0) -> tuple[float, float, int]:
    """(mean µs, min µs, calls) of calling `function` for about `seconds` (at least 5 calls)."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200_000):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.fmean(times) * 1e6, min(times) * 1e6, len(times)


def bench_ranking() -> None:
    fingerprint = big_fingerprint()
    raw = json.dumps(variants_document()).encode()
    doc = parse_variants_json(raw)
    supported = fingerprint.properties
    ranking = rank_variants(doc, supported)
    header = fingerprint.header_value()
    rows = []
    for name, function in (
        ("rank_variants", partial(rank_variants, doc, supported)),
        ("best_variant", partial(best_variant, doc, supported)),
        (f"parse_variants_json ({len(raw):,} bytes)", partial(parse_variants_json, raw)),
        (
            f"parse_properties_header ({len(header):,} chars)",
            partial(parse_properties_header, header),
        ),
    ):
        mean_us, min_us, calls = loop_us(function)
        rows.append([name, mean_us, min_us, calls])
    print_table(
        f"Ranking: {len(doc.variants)} variants (incl. null) against a "
        f"{len(supported)}-property fingerprint; {len(ranking.ordered)} compatible, "
        f"best {ranking.best!r}",
        ["function", "mean µs", "min µs", "calls"],
        rows,
    )


def expand_spec(spec: str) -> Fingerprint:
    return expand_hardware_spec(parse_hardware_spec(spec))


def bench_specs() -> None:
    rows = []
    for spec in SPECS:
        count = len(expand_spec(spec).properties)
        mean_us, min_us, calls = loop_us(partial(expand_spec, spec))
        rows.append([spec, count, mean_us, min_us, calls])
    print_table(
        "Hardware spec: expand_hardware_spec(parse_hardware_spec(spec))",
        ["spec", "properties", "mean µs", "min µs", "calls"],
        rows,
    )


def _detect_command() -> list[str]:
    script = Path(sys.executable).parent / "variant-proxy"
    return [str(script), "detect"] if script.exists() else [sys.executable, "-m", "proxy", "detect"]


def bench_detect() -> None:
    in_process: list[float] = []
    for _ in range(DETECT_RUNS):
        started = time.perf_counter()
        detection = detect_hardware()
        in_process.append(time.perf_counter() - started)
    command = _detect_command()
    subprocess_times: list[float] = []
    output = ""
    for _ in range(DETECT_RUNS):
        started = time.perf_counter()
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=clean_environment(),
            stdin=subprocess.DEVNULL,
        )
        subprocess_times.append(time.perf_counter() - started)
        output = completed.stdout if completed.returncode == 0 else completed.stderr
    spec_line = next(
        (line for line in output.splitlines() if line.startswith("Hardware spec:")),
        output.strip().splitlines()[-1] if output.strip() else "(no output)",
    )
    if len(spec_line) > 90:
        spec_line = f"{spec_line[:90]}... ({len(spec_line)} characters)"
    notes = "".join(f"\n  # {note}" for note in detection.notes)
    print_table(
        f"Detection ({DETECT_RUNS} runs each); this machine: {spec_line}{notes}",
        ["what", "median ms", "min ms", "max ms"],
        [
            ["proxy.detect.detect_hardware() in process", *_ms(in_process)],
            [
                f"{' '.join(Path(c).name for c in command)} (subprocess wall time)",
                *_ms(subprocess_times),
            ],
        ],
    )


def _ms(values: list[float]) -> list[float]:
    return [statistics.median(values) * 1000, min(values) * 1000, max(values) * 1000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    exit_on_sigterm()
    print(f"bench.engine: {machine_note()}; {load_note()}")
    bench_ranking()
    bench_specs()
    bench_detect()


if __name__ == "__main__":
    main()
