"""Local detection with faked py-cpuinfo answers and faked NVML modules.

The fakes stand in for the external libraries only: `cpu_info` returns the kind of dict
`cpuinfo.get_cpu_info()` returns, and `FakeNvml` answers like the `pynvml` module,
raising the real `pynvml.NVMLError` classes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import pynvml
import pytest

from proxy import detect
from proxy.cli.detect_output import config_snippet, detect_report
from proxy.detect import (
    FORCE_CUDA_ENV,
    FORCE_SM_ENV,
    Detection,
    HardwareFacts,
    detect_hardware,
    detected_fingerprint,
    detection_to_spec,
)
from proxy.variants.fingerprint import (
    EMPTY_FINGERPRINT,
    expand_hardware_spec,
    format_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
)

# Flag lists in the spellings py-cpuinfo reports (CPUID names such as `pni` for SSE3).
X86_V1 = ["fpu", "cx8", "cmov", "mmx", "fxsr", "sse", "sse2", "syscall", "nx", "lm"]
X86_V2 = [*X86_V1, "pni", "ssse3", "cx16", "sse4_1", "sse4_2", "popcnt", "lahf_lm"]
X86_V3 = [*X86_V2, "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"]
X86_V4 = [*X86_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
# /proc/cpuinfo "Features" of an AWS Graviton2 (Neoverse N1, Armv8.2-A).
GRAVITON2 = [
    *["fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp"],
    *["asimdhp", "cpuid", "asimdrdm", "lrcpc", "dcpop", "asimddp", "ssbs"],
]


def cpu(arch: str, flags: list[str], bits: int = 64) -> Callable[[], Mapping[str, Any]]:
    def get_cpu_info() -> Mapping[str, Any]:
        return {"arch": arch, "bits": bits, "flags": sorted(flags), "brand_raw": "Fake CPU"}

    return get_cpu_info


class FakeNvml:
    """Answers like the pynvml module; `calls` records what detection asked."""

    NVMLError = pynvml.NVMLError

    def __init__(
        self,
        *,
        cuda: int | None = 12080,
        cuda_v2: int | None = None,
        capabilities: tuple[tuple[int, int] | None, ...] = ((9, 0),),
        fail: str | None = None,
        error: Exception | None = None,
    ) -> None:
        self.cuda = cuda
        self.cuda_v2 = cuda_v2 if cuda_v2 is not None else cuda
        self.capabilities = capabilities
        self.fail = fail
        self.error = error or pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail:
            raise self.error

    def nvmlInit(self) -> None:
        self._call("init")

    def nvmlShutdown(self) -> None:
        self._call("shutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        self._call("driver")
        return "570.86.15"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._call("cuda_v2")
        if self.cuda_v2 is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self.cuda_v2

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._call("cuda")
        if self.cuda is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._call("count")
        return len(self.capabilities)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._call("handle")
        return index

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        self._call("capability")
        capability = self.capabilities[handle]
        if capability is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return capability


class UntouchableNvml(FakeNvml):
    def _call(self, name: str) -> None:
        raise AssertionError(f"NVML was asked for {name} although everything was forced")


NO_CPU = cpu("PPC_64", [])


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FORCE_CUDA_ENV, raising=False)
    monkeypatch.delenv(FORCE_SM_ENV, raising=False)


# --- CPU ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "level"), [(X86_V1, 1), (X86_V2, 2), (X86_V3, 3), (X86_V4, 4)])
def test_x86_64_level_from_py_cpuinfo_flags(flags: list[str], level: int) -> None:
    detection = detect_hardware(cpu_info=cpu("X86_64", flags), nvml=FakeNvml(fail="init"))
    assert detection.facts.cpu_arch == "x86_64"
    assert detection.facts.x86_64_level == level
    fingerprint = detected_fingerprint(detection)
    assert fingerprint.values("x86_64", "level") == tuple(f"v{n}" for n in range(level, 0, -1))
    assert fingerprint == expand_hardware_spec(parse_hardware_spec(f"cpu=x86_64_v{level}"))


def test_detected_flags_beyond_the_level_are_in_the_fingerprint_and_spec() -> None:
    flags = [*X86_V3, "sha", "avx512vnni", "aes", "rdrnd", "hypervisor"]
    detection = detect_hardware(cpu_info=cpu("X86_64", flags), nvml=FakeNvml(fail="init"))
    fingerprint = detected_fingerprint(detection)
    for flag in ("sha_ni", "avx512_vnni", "aes", "rdrand"):
        assert fingerprint.values("x86_64", flag) == ("on",)
    assert fingerprint.values("x86_64", "hypervisor") == ()
    spec = detection_to_spec(detection.facts)
    assert spec.cpu == "x86_64_v3"
    assert [p.feature for p in spec.properties] == ["avx512_vnni", "sha_ni", "rdrand", "aes"]
    assert expand_hardware_spec(parse_hardware_spec(format_hardware_spec(spec))) == fingerprint


def test_x86_64_without_flags_is_the_baseline_with_a_note() -> None:
    detection = detect_hardware(cpu_info=cpu("X86_64", []), nvml=FakeNvml(fail="init"))
    assert detection.facts.x86_64_level == 1
    assert any("no CPU flags" in note for note in detection.notes)


def test_aarch64_version_and_flags() -> None:
    detection = detect_hardware(cpu_info=cpu("ARM_8", GRAVITON2), nvml=FakeNvml(fail="init"))
    assert detection.facts.cpu_arch == "aarch64"
    assert detection.facts.aarch64_version == "8.2a"
    fingerprint = detected_fingerprint(detection)
    assert fingerprint.values("aarch64", "version") == ("8.2a", "8.1a", "8a")
    assert [feature for _, feature in fingerprint.features][1:4] == ["ssbs", "asimddp", "lrcpc"]
    assert fingerprint.values("aarch64", "atomics") == ()  # not in the reference vocabulary
    assert format_hardware_spec(detection_to_spec(detection.facts)).startswith(
        "cpu=aarch64_8.2a,prop=aarch64::ssbs::on,"
    )


def test_32_bit_arm_and_other_architectures_get_no_cpu_properties() -> None:
    for info in (cpu("ARM_8", GRAVITON2, bits=32), cpu("PPC_64", ["altivec"])):
        detection = detect_hardware(cpu_info=info, nvml=FakeNvml(fail="init"))
        assert detection.facts.cpu_arch is None
        assert any("no built-in provider" in note for note in detection.notes)
        assert detected_fingerprint(detection) == EMPTY_FINGERPRINT


def test_failing_py_cpuinfo_gives_a_note_not_a_crash() -> None:
    def broken() -> Mapping[str, Any]:
        raise OSError("cpuid blocked")

    detection = detect_hardware(cpu_info=broken, nvml=FakeNvml(fail="init"))
    assert detection.facts.cpu_arch is None
    assert any("py-cpuinfo failed" in note and "cpuid blocked" in note for note in detection.notes)


# --- NVIDIA ------------------------------------------------------------------------------


def test_nvml_gives_cuda_version_and_highest_compute_capability() -> None:
    nvml = FakeNvml(cuda=12080, capabilities=((8, 6), (9, 0), (7, 5)))
    detection = detect_hardware(cpu_info=NO_CPU, nvml=nvml)
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 8), (9, 0))
    fingerprint = detected_fingerprint(detection)
    assert fingerprint.values("nvidia", "cuda_version_lower_bound")[0] == "12.8"
    assert fingerprint.values("nvidia", "sm_arch") == ("90_real", "90_virtual")
    assert nvml.calls[0] == "init" and nvml.calls[-1] == "shutdown"


def test_cuda_v2_failure_falls_back_to_v1() -> None:
    nvml = FakeNvml(cuda=12040)
    nvml.cuda_v2 = None
    detection = detect_hardware(cpu_info=NO_CPU, nvml=nvml)
    assert detection.facts.cuda == (12, 4)
    assert nvml.calls.index("cuda_v2") < nvml.calls.index("cuda")


def test_device_whose_capability_fails_is_skipped() -> None:
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(capabilities=((8, 0), None)))
    assert detection.facts.sm == (8, 0)


@pytest.mark.parametrize("failing_call", ["init", "driver", "count", "handle"])
def test_nvml_errors_mean_no_nvidia_properties_and_a_note(failing_call: str) -> None:
    nvml = FakeNvml(fail=failing_call)
    detection = detect_hardware(cpu_info=NO_CPU, nvml=nvml)
    assert (detection.facts.cuda, detection.facts.sm) == (None, None)
    assert any(note.startswith("nvidia: no nvidia properties") for note in detection.notes)
    assert "shutdown" in nvml.calls


def test_missing_nvml_library_is_a_note() -> None:
    nvml = FakeNvml(fail="init", error=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    detection = detect_hardware(cpu_info=NO_CPU, nvml=nvml)
    assert detection.facts.cuda is None
    assert any("NVML Shared Library Not Found" in note for note in detection.notes)


def test_unexpected_exception_from_a_broken_binding_is_a_note() -> None:
    nvml = FakeNvml(fail="driver", error=RuntimeError("driver exploded"))
    detection = detect_hardware(cpu_info=NO_CPU, nvml=nvml)
    assert detection.facts.cuda is None
    assert any("driver exploded" in note for note in detection.notes)


def test_pynvml_not_installed_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    detection = detect_hardware(cpu_info=NO_CPU)
    assert detection.facts.cuda is None
    assert any("pynvml (nvidia-ml-py) is not installed" in note for note in detection.notes)


def test_no_gpu_means_no_nvidia_properties() -> None:
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(capabilities=()))
    assert (detection.facts.cuda, detection.facts.sm) == (None, None)
    assert any("no NVIDIA GPU found" in note for note in detection.notes)


@pytest.mark.parametrize("raw_cuda", [10020, 16000])
def test_detected_cuda_outside_the_reference_range_is_not_used(raw_cuda: int) -> None:
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(cuda=raw_cuda))
    assert detection.facts.cuda is None
    assert any("outside the provider's range" in note for note in detection.notes)


def test_driver_without_cuda_version_means_no_nvidia_properties() -> None:
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(cuda=None))
    assert (detection.facts.cuda, detection.facts.sm) == (None, None)
    assert any("reports no CUDA version" in note for note in detection.notes)


def test_gpu_older_than_5_0_gives_bounds_but_no_sm_arch() -> None:
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(capabilities=((3, 5),)))
    assert detection.facts.cuda == (12, 8) and detection.facts.sm is None
    assert detected_fingerprint(detection).values("nvidia", "sm_arch") == ()


# --- the reference provider's override variables -----------------------------------------


def test_both_overrides_are_used_without_asking_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_CUDA_ENV, "12.8")
    monkeypatch.setenv(FORCE_SM_ENV, "9.0")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=UntouchableNvml())
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 8), (9, 0))
    assert detected_fingerprint(detection) == expand_hardware_spec(
        parse_hardware_spec("cuda=12.8,sm=9.0")
    )


def test_forced_cuda_alone_without_nvml_gives_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_CUDA_ENV, "12.7")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(fail="init"))
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 7), None)
    assert any("no sm_arch" in note for note in detection.notes)


def test_forced_cuda_with_a_gpu_takes_the_gpus_capability(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORCE_CUDA_ENV, "13.0")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(cuda=12080))
    assert (detection.facts.cuda, detection.facts.sm) == ((13, 0), (9, 0))


def test_forced_sm_replaces_the_detected_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_SM_ENV, "12.0")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(capabilities=((8, 6),)))
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 8), (12, 0))


def test_forced_sm_without_any_cuda_version_gives_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORCE_SM_ENV, "9.0")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(fail="init"))
    assert (detection.facts.cuda, detection.facts.sm) == (None, None)


def test_forced_cuda_skips_the_range_check_and_reads_like_a_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORCE_SM_ENV, "9.0")
    monkeypatch.setenv(FORCE_CUDA_ENV, "16.25")
    assert detect_hardware(cpu_info=NO_CPU, nvml=UntouchableNvml()).facts.cuda == (16, 25)
    monkeypatch.setenv(FORCE_CUDA_ENV, "12.7.1")
    assert detect_hardware(cpu_info=NO_CPU, nvml=UntouchableNvml()).facts.cuda == (12, 7)


def test_empty_overrides_count_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_CUDA_ENV, "")
    monkeypatch.setenv(FORCE_SM_ENV, "")
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml(cuda=12040))
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 4), (9, 0))


@pytest.mark.parametrize(("name", "value"), [(FORCE_CUDA_ENV, "twelve"), (FORCE_SM_ENV, "9.x")])
def test_malformed_override_gives_no_nvidia_properties_and_a_note(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    detection = detect_hardware(cpu_info=NO_CPU, nvml=FakeNvml())
    assert (detection.facts.cuda, detection.facts.sm) == (None, None)
    assert any(name in note and repr(value) in note for note in detection.notes)


def test_environ_parameter_replaces_os_environ() -> None:
    environ = {FORCE_CUDA_ENV: "12.6", FORCE_SM_ENV: "8.0"}
    detection = detect_hardware(cpu_info=NO_CPU, nvml=UntouchableNvml(), environ=environ)
    assert (detection.facts.cuda, detection.facts.sm) == ((12, 6), (8, 0))


# --- specs, fingerprints and the report --------------------------------------------------


def test_nothing_detected_is_the_none_spec() -> None:
    facts = HardwareFacts()
    assert format_hardware_spec(detection_to_spec(facts)) == "none"
    assert detected_fingerprint(Detection(facts)) == EMPTY_FINGERPRINT


def test_report_has_properties_header_spec_and_pip_line() -> None:
    detection = Detection(
        HardwareFacts(cpu_arch="x86_64", x86_64_level=2, cuda=(12, 8), sm=(9, 0)),
        notes=("cpu: x86_64 level v2",),
    )
    report = detect_report(detection, "http://127.0.0.1:8080/")
    lines = report.splitlines()
    fingerprint = detected_fingerprint(detection)
    assert lines[0] == "# cpu: x86_64 level v2"
    assert "  x86_64 :: level :: v2" in lines and "  nvidia :: sm_arch :: 90_virtual" in lines
    header = next(line for line in lines if line.startswith("Variant-Properties: "))
    assert parse_properties_header(header.removeprefix("Variant-Properties: ")) == fingerprint
    assert "Hardware spec: cpu=x86_64_v2,cuda=12.8,sm=9.0" in lines
    assert lines[-2:] == [
        "pip install --index-url "
        "http://127.0.0.1:8080/hw/cpu=x86_64_v2,cuda=12.8,sm=9.0/simple/ PACKAGE",
        "uv pip install --index-url "
        "http://127.0.0.1:8080/hw/cpu=x86_64_v2,cuda=12.8,sm=9.0/simple/ PACKAGE",
    ]


def test_report_of_an_empty_detection() -> None:
    report = detect_report(Detection(HardwareFacts()), "http://127.0.0.1:9000")
    assert "  (none)" in report.splitlines()
    assert report.endswith("http://127.0.0.1:9000/hw/none/simple/ PACKAGE\n")
    assert "compact spec" not in report


def test_detected_runs_detection_once(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def counting_detect_hardware() -> Detection:
        runs.append(1)
        return Detection(HardwareFacts())

    detect.detected.cache_clear()
    monkeypatch.setattr(detect, "detect_hardware", counting_detect_hardware)
    try:
        assert detect.detected() is detect.detected()
        assert runs == [1]
    finally:
        detect.detected.cache_clear()


def test_real_machine_detection_never_raises() -> None:
    detection = detect_hardware()
    assert all("\n" not in note for note in detection.notes)
    spec = detection_to_spec(detection.facts)
    assert parse_hardware_spec(format_hardware_spec(spec)) == spec


# A machine with many CPU flags beyond its level (a recent server CPU reports dozens).
MANY_FLAGS = tuple(f"flag{number}" for number in range(60))


def _many_flags() -> Detection:
    facts = HardwareFacts(
        cpu_arch="x86_64", x86_64_level=4, cpu_flags=MANY_FLAGS, cuda=(12, 8), sm=(9, 0)
    )
    return Detection(facts, notes=("cpu: x86_64 level v4",))


def test_report_is_compact_by_default_with_a_short_url() -> None:
    lines = detect_report(_many_flags(), "http://127.0.0.1:8080").splitlines()
    assert "Hardware spec: cpu=x86_64_v4,cuda=12.8,sm=9.0" in lines
    assert "# compact spec: 60 further detected CPU flags are left out" in " ".join(lines)
    pip_line = next(line for line in lines if line.startswith("pip install"))
    url = pip_line.split()[3]
    assert url == "http://127.0.0.1:8080/hw/cpu=x86_64_v4,cuda=12.8,sm=9.0/simple/"
    assert len(url) < 200
    assert not any("flag1" in line for line in lines)


def test_report_full_keeps_every_flag() -> None:
    report = detect_report(_many_flags(), "http://127.0.0.1:8080", full=True)
    assert "prop=x86_64::flag59::on" in report and "  x86_64 :: flag0 :: on" in report
    assert "compact spec" not in report


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("pip-conf", "[global]\nindex-url = {url}\n"),
        ("uv-toml", '[[index]]\nurl = "{url}"\ndefault = true\n'),
    ],
)
def test_config_snippets(fmt: str, expected: str) -> None:
    url = "http://proxy.example:8080/hw/cpu=x86_64_v4,cuda=12.8,sm=9.0/simple/"
    snippet = config_snippet(_many_flags(), "http://proxy.example:8080/", fmt)
    assert snippet.startswith("# ") and snippet.endswith(expected.format(url=url))


def test_snippets_parse_as_what_they_claim() -> None:
    import configparser
    import tomllib

    url = "http://proxy.example:8080/hw/cpu=x86_64_v4,cuda=12.8,sm=9.0/simple/"
    pip_conf = configparser.ConfigParser()
    pip_conf.read_string(config_snippet(_many_flags(), "http://proxy.example:8080", "pip-conf"))
    assert pip_conf["global"]["index-url"] == url
    uv_toml = tomllib.loads(config_snippet(_many_flags(), "http://proxy.example:8080", "uv-toml"))
    assert uv_toml == {"index": [{"url": url, "default": True}]}
