"""The deploy files parse and point at things that exist: paths, images, ports, commands, services."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandboxwatch.cli import build_parser
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def cli_accepts(args: list[str]) -> None:
    """The image's entrypoint is ``sandboxwatch``: its arguments must parse (placeholders stand in)."""
    concrete = [re.sub(r"\$\{?\(?[A-Z_]+[^}/)]*\)?\}?", "8", a) for a in args]
    build_parser().parse_args(concrete)


def listening_port(args: list[str], flag: str) -> int:
    return int(next(a.split("=", 1)[1] for a in args if a.startswith(flag + "=")))


def test_compose_file_is_accepted_by_docker_compose(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed")
    env = tmp_path / ".env"
    shutil.copy(DEPLOY / "compose" / ".env.example", env)
    result = subprocess.run(
        [binary, "--env-file", str(env), "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in {"CLICKHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}},
    )
    assert refused.returncode != 0 and "CLICKHOUSE_PASSWORD" in refused.stderr, "secrets must be required"


def compose_spec_errors(path: Path) -> str:
    """Validates against the Compose Specification schema (check-jsonschema's vendored copy), the one
    `docker compose` v2 checks files against; Debian's docker-compose 1.29 above reads the same spec, older."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    assert compose_spec_errors(COMPOSE) == ""
    # The check can fail: a misspelt service key is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("healthcheck:", "health_check:", 1))
    assert "health_check" in compose_spec_errors(broken)


def test_compose_services_reference_what_exists() -> None:
    services = load(COMPOSE)["services"]
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).resolve().exists(), f"{name}: {source} does not exist"
        if image.startswith("sandboxwatch"):
            cli_accepts(service["command"])
            assert "healthcheck" in service, f"{name}: needs a health check"
    recorder_port = listening_port(services["sandboxwatch-recorder"]["command"], "--port")
    prometheus = load(DEPLOY / "prometheus" / "prometheus.yml")
    for job in prometheus["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert host in services and int(port) == listening_port(services[host]["command"], "--metrics-port")
    for manager in prometheus["alerting"]["alertmanagers"]:
        for target in manager["static_configs"][0]["targets"]:
            assert target.split(":")[0] in services
    for receiver in load(DEPLOY / "alertmanager" / "alertmanager.yml")["receivers"]:
        for hook in receiver["webhook_configs"]:
            host, port = re.match(r"http://([^:/]+):(\d+)/", hook["url"]).groups()  # type: ignore[union-attr]
            assert host in services and int(port) == recorder_port


def test_dockerfile_copies_only_what_exists() -> None:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_kubernetes_manifests_are_complete_and_keep_secrets_out() -> None:
    folder = DEPLOY / "kubernetes"
    kustomization = load(folder / "kustomization.yaml")
    documents = [doc for resource in kustomization["resources"] for doc in load_all(folder / resource)]
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (folder / file).exists(), file
    assert not [d for d in documents if d["kind"] == "Secret"], "secrets are created by the operator"
    configmaps = {g["name"] for g in kustomization["configMapGenerator"]} | {"sandboxwatch-endpoints"}
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert {d["metadata"]["name"] for d in workloads} == {
        "sandboxwatch-worker", "sandboxwatch-recorder", "sandboxwatch-api", "sandboxwatch-ingest-exchange",
        "sandboxwatch-ingest-chain", "kafka", "kafka-create-topics", "clickhouse", "prometheus", "alertmanager",
        "grafana",
    }  # fmt: skip
    for deployment in workloads:
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"]:
            image = container["image"]
            assert image == "sandboxwatch" or (":" in image and not image.endswith(":latest")), image
            if image == "sandboxwatch":
                cli_accepts(container["args"])
            assert container["resources"]["requests"], "resource requests"
            if deployment["kind"] == "Job":
                continue
            assert "livenessProbe" in container and "readinessProbe" in container
            ports = {p["name"] for p in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                handler = container[probe].get("httpGet") or container[probe].get("tcpSocket")
                if handler is None:
                    assert container[probe]["exec"]["command"], "a probe needs a handler"
                else:
                    assert handler["port"] in ports
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:  # Secrets are referenced by name only, never shipped
                    assert ref["configMapKeyRef"]["name"] in configmaps
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    assert {"sandboxwatch-worker", "sandboxwatch-recorder", "sandboxwatch-api", "kafka", "clickhouse",
            "prometheus", "alertmanager", "grafana"} <= set(services)  # fmt: skip
    # Every Service selects pods some workload runs.
    labels = [d["spec"]["template"].get("metadata", {}).get("labels", {}) for d in workloads]
    for name, service in services.items():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= pod.items() for pod in labels), f"service {name} selects no pods"
    prometheus = load(folder / "infra" / "prometheus.yml")
    assert prometheus["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["sandboxwatch-worker"]
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "config", str(folder / "infra" / "prometheus.yml")],
                                 capture_output=True, text=True)  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
