"""Variant wheels shaped like the WheelNext reference files, built by the suite itself.

The reference files (`../shared/fixtures/wheelnext`) sit beside the repository only on the
machine that holds them; a fresh clone has none. The suite therefore builds equivalents:
the same schema (`v0.0.3`), the same fictional namespaces, hash-style labels, a project with
no null variant, an optional provider, and a variants.json with feature and property
priorities. The wheels are real zip files with a `*.dist-info/variant.json` naming their
own label only. Both sets are used when both are there: `fixture_roots()`.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

SCHEMA = "https://variants-schema.wheelnext.dev/v0.0.3.json"
REFERENCE_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "wheelnext"
REFERENCE_MISSING = (
    f"the WheelNext reference files are not beside this clone ({REFERENCE_ROOT}); "
    "the suite's own equivalents are used instead"
)

_HW_PROVIDER = {"plugin-api": "provider_fictional_hw.plugin:Plugin", "requires": ["hw == 1"]}
_TECH_PROVIDER = {"plugin-api": "provider_fictional_tech.plugin:Plugin", "requires": ["t == 1"]}


def _hw(**features: list[str]) -> dict[str, list[str]]:
    return dict(features)


# project -> (version, default-priorities, providers, variants); "null" is the null variant.
PROJECTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "gen-flit": (
        "0.1.0",
        {"namespace": ["fictional_hw", "fictional_tech"]},
        {"fictional_hw": _HW_PROVIDER, "fictional_tech": _TECH_PROVIDER},
        {
            "chef25": {
                "fictional_tech": _hw(
                    quantum=["superposition"], risk_exposure=["25"], technology=["auto_chef"]
                )
            },
            "deep10": {
                "fictional_hw": _hw(
                    architecture=["deepthought"],
                    compute_accuracy=["10"],
                    compute_capability=["10"],
                    humor=["0"],
                ),
                "fictional_tech": _hw(quantum=["foam"]),
            },
            "foam_e10": {
                "fictional_tech": _hw(
                    quantum=["foam"], risk_exposure=["1000000000"], technology=["improb_drive"]
                )
            },
            "hal_c6": {
                "fictional_hw": _hw(
                    architecture=["hal9000"],
                    compute_accuracy=["0"],
                    compute_capability=["6"],
                    humor=["2"],
                )
            },
            "mother4": {"fictional_hw": _hw(architecture=["mother"], compute_capability=["4"])},
            "null": {},
            "tars8": {
                "fictional_hw": _hw(
                    architecture=["tars"],
                    compute_accuracy=["8"],
                    compute_capability=["8"],
                    humor=["10"],
                )
            },
        },
    ),
    "gen-hatch": (
        "0.2.0",
        {"namespace": ["fictional_hw", "fictional_tech"]},
        {"fictional_hw": _HW_PROVIDER},
        {
            "one": {"fictional_hw": _hw(architecture=["mother"])},
            "two": {"fictional_hw": _hw(architecture=["mother"], compute_accuracy=["10"])},
        },
    ),
    "gen-sandbox": (
        "1.0",
        {"namespace": ["fictional_tech", "fictional_hw"]},
        {"fictional_hw": _HW_PROVIDER, "fictional_tech": _TECH_PROVIDER},
        {
            "a1b2c3d4": {
                "fictional_hw": _hw(
                    architecture=["hal9000"],
                    compute_accuracy=["0"],
                    compute_capability=["6"],
                    humor=["2"],
                )
            },
            "e5f60718": {
                "fictional_hw": _hw(architecture=["hal9000"]),
                "fictional_tech": _hw(
                    quantum=["foam"], risk_exposure=["1000000000"], technology=["improb_drive"]
                ),
            },
            "9abcdef0": {"fictional_hw": _hw(architecture=["mother"], compute_capability=["4"])},
            "null": {},
        },
    ),
    "gen-plugin": (
        "0",
        {"namespace": ["installable_plugin", "non_existing_plugin"]},
        {
            "installable_plugin": {"requires": ["test-plugin-package"]},
            "non_existing_plugin": {"optional": True, "requires": ["do-not-install-me"]},
        },
        {
            "0f1e2d3c": {"installable_plugin": _hw(feat1=["val1c"], feat2=["val2b"])},
            "4b5a6978": {"installable_plugin": _hw(feat1=["val1c"])},
            "bar": {"installable_plugin": _hw(feat2=["val2b"])},
            "c0ffee00": {"installable_plugin": _hw(feat2=["val2b"])},
            "foo": {"installable_plugin": _hw(feat1=["val1c"])},
            "null": {},
        },
    ),
}

# A variants.json with no wheels, using feature and property priorities.
PRIORITIES_ONLY: dict[str, Any] = {
    "$schema": SCHEMA,
    "default-priorities": {
        "namespace": ["fictional_hw", "fictional_tech"],
        "feature": {"fictional_hw": ["humor", "compute_accuracy"], "fictional_tech": ["quantum"]},
        "property": {"fictional_tech": {"technology": ["auto_chef"]}},
    },
    "providers": {"fictional_hw": _HW_PROVIDER, "fictional_tech": _TECH_PROVIDER},
    "variants": {
        "11aa22bb": {"fictional_hw": _hw(compute_capability=["4", "5"])},
        "33cc44dd": {"fictional_hw": _hw(compute_capability=["4", "5", "6", "7"])},
        "55ee66ff": {"fictional_hw": _hw(architecture=["mother"], compute_capability=["4"])},
        "77008811": {
            "fictional_tech": _hw(
                quantum=["superposition"], risk_exposure=["25"], technology=["auto_chef"]
            )
        },
        "null": {},
    },
}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _wheel(dest: Path, dist: str, version: str, label: str | None, doc: dict[str, Any]) -> None:
    info = f"{dist}-{version}.dist-info"
    name = dist.replace("_", "-")
    members = [
        (f"{dist}.py", f"BUILD = {label or 'plain'!r}\n".encode()),
        (f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    if label is not None:
        own = {**doc, "variants": {label: doc["variants"][label]}}
        members.append((f"{info}/variant.json", json.dumps(own, indent=4).encode()))
    record = [_record_line(path, data) for path, data in members] + [f"{info}/RECORD,,"]
    members.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    filename = f"{dist}-{version}-py3-none-any" + (f"-{label}" if label else "") + ".whl"
    with zipfile.ZipFile(dest / filename, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members:
            archive.writestr(zipfile.ZipInfo(path, date_time=(2025, 1, 1, 0, 0, 0)), data)


def build_equivalents(root: Path) -> Path:
    """Write the generated set under `root` (one folder per project) and return `root`."""
    for project, (version, priorities, providers, variants) in PROJECTS.items():
        dist = project.replace("-", "_")
        folder = root / "generated" / project
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "$schema": SCHEMA,
            "default-priorities": priorities,
            "providers": providers,
            "variants": variants,
        }
        (folder / f"{dist}-{version}-variants.json").write_text(json.dumps(doc, indent=4))
        _wheel(folder, dist, version, None, doc)
        for label in variants:
            _wheel(folder, dist, version, label, doc)
    loose = root / "generated" / "variants-json-only"
    loose.mkdir(parents=True, exist_ok=True)
    (loose / "gen_priorities-1.0-variants.json").write_text(json.dumps(PRIORITIES_ONLY))
    return root


_generated: Path | None = None


def generated_root() -> Path:
    """The generated set, built once per test process in a temporary folder."""
    global _generated
    if _generated is None:
        folder = Path(tempfile.mkdtemp(prefix="wheelnext-like-"))
        atexit.register(shutil.rmtree, folder, True)
        _generated = build_equivalents(folder)
    return _generated


def fixture_roots() -> list[Path]:
    """The folders to read: the generated set, and the reference files when present."""
    roots = [generated_root()]
    if REFERENCE_ROOT.is_dir():
        roots.append(REFERENCE_ROOT)
    return roots
