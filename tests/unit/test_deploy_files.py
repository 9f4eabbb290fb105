"""deploy/: the compose file and the Kubernetes manifests pass real schema validators
(check-jsonschema with its bundled compose-spec schema, kubernetes-validate with its bundled
Kubernetes schemas; both offline), and hang together: the probes ask /health on the port the
config listens on, the volume is the cache directory, and the shipped configs load.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import settings_from_mapping

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]' installs it)")
    return found


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _by_kind() -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in map(_load, MANIFESTS)}


def test_compose_file_is_valid_compose_spec() -> None:
    result = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_kustomization_names_every_manifest() -> None:
    kustomization = _load(KUBERNETES / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in MANIFESTS]
    assert set(_by_kind()) == {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"}


def _config(text: str) -> dict[str, Any]:
    data = tomllib.loads(text)
    settings_from_mapping(data)  # the proxy itself accepts it
    return data


def test_deployment_probes_ask_health_on_the_listening_port() -> None:
    kinds = _by_kind()
    config = _config(kinds["ConfigMap"]["data"]["config.toml"])
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": config["server"]["port"]}
    assert config["server"]["host"] == "0.0.0.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    service = kinds["Service"]
    assert service["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_deployment_mounts_the_cache_volume_and_the_config() -> None:
    kinds = _by_kind()
    config = _config(kinds["ConfigMap"]["data"]["config.toml"])
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in pod["containers"][0]["volumeMounts"]}
    claim = volumes[mounts[config["cache"]["dir"]]]["persistentVolumeClaim"]["claimName"]
    assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    config_volume = volumes[mounts["/etc/variant-proxy"]]["configMap"]["name"]
    assert config_volume == kinds["ConfigMap"]["metadata"]["name"]
    # One process per cache directory: the old pod must be gone before the new one starts.
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_compose_service_health_check_and_config() -> None:
    compose = _load(DEPLOY / "compose.yaml")
    service = compose["services"]["variant-proxy"]
    config = _config((DEPLOY / "config.compose.toml").read_text())
    assert service["ports"] == [f"{config['server']['port']}:{config['server']['port']}"]
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert f"variant-proxy-cache:{config['cache']['dir']}" in service["volumes"]
    assert "./config.compose.toml:/etc/variant-proxy/config.toml:ro" in service["volumes"]
    assert (DEPLOY / service["build"]["dockerfile"].removeprefix("deploy/")).exists()
