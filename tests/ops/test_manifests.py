"""The Kubernetes manifests as a cluster would take them: generated files are committed, every
overlay renders, every object deserialises into the Kubernetes client's models without losing a
field, every service has all of its objects, and every container's environment satisfies the
service's settings class (production refusing dev defaults included)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from deploy.k8s import generate
from tests.ops.platform import (
    K8S,
    OVERLAYS,
    ROOT,
    check_settings_env,
    container_env,
    find,
    one,
    render_overlay,
    repo_services,
)

MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "Job"): "V1Job",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
}
CRDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}
CNPG_APP_KEYS = {"username", "password", "host", "port", "dbname", "uri", "jdbc-uri", "pgpass"}
RABBITMQ_USER_KEYS = {"username", "password", "host", "port", "provider", "type", "default_user.conf"}


def _strip_empty(value: Any) -> Any:
    """Drop what the client's serialiser drops too (None, empty mappings), keep everything else."""
    if isinstance(value, Mapping):
        out = {k: _strip_empty(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {} or k in ("emptyDir",)}
    if isinstance(value, list):
        return [_strip_empty(v) for v in value]
    return value


def deserialise(doc: Mapping[str, Any]) -> Any:
    """The client model for `doc`; fails on a missing required field or on any field the model does
    not know (a typo would otherwise be dropped silently by the API server's client)."""
    api = ApiClient()
    model = api.deserialize(json.dumps(doc), MODELS[(doc["apiVersion"], doc["kind"])], "application/json")
    back = api.sanitize_for_serialization(model)
    assert _normalise(back) == _normalise(_strip_empty(doc)), f"{doc['kind']} {doc['metadata']['name']}: fields lost"
    return model


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_committed_manifests_are_what_the_generator_writes():
    for relative, text in generate.render().items():
        path = K8S / relative
        assert path.exists(), f"{relative} is not committed: run `python -m deploy.k8s.generate`"
        assert path.read_text(encoding="utf-8") == text, f"{relative} was edited by hand or not regenerated"


def test_every_yaml_file_parses():
    files = [*sorted(K8S.rglob("*.yaml")), ROOT / "deploy" / "compose.yaml"]
    assert len(files) > 5
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), path


def test_generator_covers_every_service_in_the_repository():
    assert sorted(s.name for s in generate.SERVICES) == repo_services()


def test_every_object_deserialises_into_the_client_models(overlay):
    docs = render_overlay(overlay)
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    unknown = kinds - set(MODELS) - CRDS
    assert not unknown, f"no check for {unknown}"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in MODELS:
            deserialise(doc)
        assert doc["metadata"]["namespace"] == ("onex-dev" if overlay == "dev" else "onex")


def test_operator_resources_have_their_required_fields(overlay):
    docs = render_overlay(overlay)
    rabbit = one(docs, "RabbitmqCluster", generate.RABBITMQ)
    assert rabbit["apiVersion"] == "rabbitmq.com/v1beta1"
    replicas = rabbit["spec"]["replicas"]
    assert replicas == (1 if overlay == "dev" else 3)
    assert "quorum" in rabbit["spec"]["rabbitmq"]["additionalConfig"]
    assert not find(docs, "StatefulSet"), "brokers and databases are operator resources, not StatefulSets"
    for service in repo_services():
        cluster = one(docs, "Cluster", f"{service}-db")
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        spec = cluster["spec"]
        assert spec["instances"] >= 1 and spec["storage"]["size"]
        assert spec["bootstrap"]["initdb"] == {"database": service, "owner": service}
        if overlay == "production":
            assert spec["instances"] == 3
            store = spec["backup"]["barmanObjectStore"]
            assert store["destinationPath"].endswith(f"/{service}")
            backup = one(docs, "ScheduledBackup", f"{service}-db-daily")
            assert backup["spec"]["cluster"]["name"] == f"{service}-db"
            assert len(backup["spec"]["schedule"].split()) == 6  # CNPG schedules have a seconds field


def _pod_labels(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("service", repo_services())
def test_every_service_has_each_object(overlay, service):
    docs = render_overlay(overlay)
    deployment = one(docs, "Deployment", service)
    labels = _pod_labels(deployment)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["serve", service]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": generate.PORT}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] >= 10000
    assert container["securityContext"]["readOnlyRootFilesystem"]

    svc = one(docs, "Service", service)
    assert _selects(svc["spec"]["selector"], labels)
    assert svc["spec"]["ports"][0]["port"] == generate.PORT and svc["spec"]["ports"][0]["targetPort"] == "http"
    assert _selects(one(docs, "PodDisruptionBudget", service)["spec"]["selector"]["matchLabels"], labels)
    hpa = one(docs, "HorizontalPodAutoscaler", service)["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    if overlay == "production":
        assert hpa["minReplicas"] >= 2, "production runs at least two instances of every service"
    assert _selects(one(docs, "NetworkPolicy", service)["spec"]["podSelector"]["matchLabels"], labels)

    job = one(docs, "Job", f"{service}-migrate")["spec"]["template"]["spec"]
    (migrate,) = job["containers"]
    assert migrate["args"] == ["migrate", service]
    assert migrate["image"] == container["image"]
    assert job["restartPolicy"] in ("OnFailure", "Never")
    one(docs, "Cluster", f"{service}-db")


def test_gateway_deployment_service_and_ingress(overlay):
    docs = render_overlay(overlay)
    gateway = one(docs, "Deployment", "gateway")
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith(generate.GATEWAY_IMAGE + ":")
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    svc = one(docs, "Service", "gateway")
    assert _selects(svc["spec"]["selector"], _pod_labels(gateway))
    (rule,) = one(docs, "Ingress", "gateway")["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway" and backend["port"]["name"] == svc["spec"]["ports"][0]["name"]
    one(docs, "PodDisruptionBudget", "gateway")
    one(docs, "HorizontalPodAutoscaler", "gateway")
    # The gateway's nginx resolves each service by its Service name (deploy/docker/render_gateway.py).
    for service in repo_services():
        one(docs, "Service", service)


def _secret_presence(docs: list[Mapping[str, Any]], overlay: str):
    clusters = {d["metadata"]["name"] for d in find(docs, "Cluster")}
    rabbits = {d["metadata"]["name"] for d in find(docs, "RabbitmqCluster")}
    defined = {
        d["metadata"]["name"]: set(d.get("data", {})) | set(d.get("stringData", {})) for d in find(docs, "Secret")
    }

    def present(secret: str, key: str) -> bool:
        if secret.endswith("-app") and secret.removesuffix("-app") in clusters:
            assert key in CNPG_APP_KEYS, f"CloudNativePG writes no key {key!r} in {secret}"
            return True
        if secret.endswith("-default-user") and secret.removesuffix("-default-user") in rabbits:
            assert key in RABBITMQ_USER_KEYS, f"the RabbitMQ operator writes no key {key!r} in {secret}"
            return True
        if secret in defined:
            return key in defined[secret]
        if secret in generate.SECRETS_TO_CREATE:
            assert key in generate.SECRETS_TO_CREATE[secret], f"{secret}/{key} is not in SECRETS_TO_CREATE"
            return overlay == "production"  # created by hand in production (docs/operations.md)
        return False

    return present


@pytest.mark.parametrize("service", repo_services())
def test_every_setting_a_service_requires_is_provided(overlay, service, monkeypatch):
    docs = list(render_overlay(overlay))
    present = _secret_presence(docs, overlay)
    for kind, name in (("Deployment", service), ("Job", f"{service}-migrate")):
        (container,) = one(docs, kind, name)["spec"]["template"]["spec"]["containers"]
        env = container_env(docs, container, service=service, present_secret=present)
        settings = check_settings_env(service, env, monkeypatch)
        assert settings.app_env.value == ("dev" if overlay == "dev" else "prod")
        assert f"@{service}-db-rw:5432/{service}" in settings.database_url
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert f"@{generate.RABBITMQ}:5672/" in settings.amqp_url
        assert settings.bus_namespace == "onex"


def test_hand_made_secrets_are_documented_in_the_runbook():
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for secret, keys in generate.SECRETS_TO_CREATE.items():
        command = re.search(rf"kubectl[^\n]*create secret generic {re.escape(secret)}\b(?:[^\n]*\\\n)*[^\n]*", runbook)
        assert command, f"docs/operations.md does not say how to create Secret {secret}"
        for key in keys:
            assert "--from-" in command.group(0) and f"{key}=" in command.group(0), f"{secret}: key {key} not shown"
