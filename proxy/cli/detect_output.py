"""What `variant-proxy detect` prints: this machine's fingerprint as a property list, a
`Variant-Properties` header line, a hardware spec and ready install lines, or as a
`pip.conf` / `uv.toml` snippet.

By default the spec is compact (`cpu=x86_64_v3,cuda=12.8,sm=9.0`): the CPU level, the CUDA
version and the compute capability, which is what variant wheels are built for, and keeps
the URL short (a machine with many CPU flags made a 700-character URL with every flag as a
`prop=` item). `--full` keeps every detected flag.
"""

from __future__ import annotations

import dataclasses

from proxy.detect import Detection, detection_to_spec
from proxy.variants.fingerprint import (
    HardwareSpec,
    expand_hardware_spec,
    format_hardware_spec,
)

FORMATS = ("text", "pip-conf", "uv-toml")


def report_spec(detection: Detection, *, full: bool = False) -> HardwareSpec:
    """The spec to print: every detected flag with `full`, else only what the level implies."""
    spec = detection_to_spec(detection.facts)
    return spec if full else dataclasses.replace(spec, properties=())


def index_url(proxy_url: str, spec: HardwareSpec) -> str:
    return f"{proxy_url.rstrip('/')}/hw/{format_hardware_spec(spec)}/simple/"


def detect_report(detection: Detection, proxy_url: str, *, full: bool = False) -> str:
    """Notes, properties, header, spec and pip/uv lines; every line ends with a newline."""
    spec = report_spec(detection, full=full)
    fingerprint = expand_hardware_spec(spec)
    lines = [f"# {note}" for note in detection.notes]
    left_out = len(detection_to_spec(detection.facts).properties) - len(spec.properties)
    if left_out:
        lines.append(
            f"# compact spec: {left_out} further detected CPU flags are left out"
            " (--full adds them as prop= items)"
        )
    lines.append("Properties:")
    lines += [f"  {prop}" for prop in fingerprint.properties] or ["  (none)"]
    lines.append(f"Variant-Properties: {fingerprint.header_value()}")
    lines.append(f"Hardware spec: {format_hardware_spec(spec)}")
    url = index_url(proxy_url, spec)
    lines.append(f"pip install --index-url {url} PACKAGE")
    lines.append(f"uv pip install --index-url {url} PACKAGE")
    return "".join(f"{line}\n" for line in lines)


def config_snippet(detection: Detection, proxy_url: str, fmt: str, *, full: bool = False) -> str:
    """A ready `pip.conf` (`pip-conf`) or `uv.toml` (`uv-toml`) pointing at the proxy."""
    url = index_url(proxy_url, report_spec(detection, full=full))
    if fmt == "pip-conf":
        return f"# pip.conf (pip config list -v shows where it goes)\n[global]\nindex-url = {url}\n"
    if fmt == "uv-toml":
        return (
            "# uv.toml (or [tool.uv] in pyproject.toml)\n"
            f'[[index]]\nurl = "{url}"\ndefault = true\n'
        )
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
