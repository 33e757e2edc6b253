"""What the deployment tests read: the services in the repository, their settings classes, the
rendered kustomize overlays, and the environment a container of a manifest would see."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings

from deploy.docker.entrypoint import settings_class

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
LOCAL_HOSTS = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])")


def repo_services() -> list[str]:
    """Every service in the repository (a new one without manifests must fail the tests)."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/main.py"))


@cache
def render_overlay(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (its built-in kustomize) is not installed: overlays cannot be rendered here")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def find(docs: Iterable[Mapping[str, Any]], kind: str, name: str | None = None) -> list[Mapping[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: Iterable[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def config_map(docs: Iterable[Mapping[str, Any]], generated_name: str) -> Mapping[str, Any]:
    """A ConfigMap by its kustomize-generated name (name + content hash)."""
    return one(docs, "ConfigMap", generated_name)


def env_prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", "")).upper()


def accepted_env_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable name the settings class reads."""
    prefix = env_prefix(cls)
    names = set()
    for field_name, info in cls.model_fields.items():
        names.add((prefix + field_name).upper())
        alias = info.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        names.update(str(choice).upper() for choice in choices if isinstance(choice, str))
    return names


def build_settings(service: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """Instantiate the service's settings from exactly `env` (nothing inherited from this machine)."""
    cls = settings_class(service)
    prefix = env_prefix(cls)
    accepted = accepted_env_names(cls)
    import os

    for key in list(os.environ):
        if key.upper().startswith(prefix) or key.upper() in accepted:
            monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls()


def check_settings_env(service: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """The checks every deployment's environment must pass for one service."""
    cls = settings_class(service)
    prefix = env_prefix(cls)
    accepted = accepted_env_names(cls)
    unknown = sorted(k for k in env if k.upper().startswith(prefix) and k.upper() not in accepted)
    assert not unknown, f"{service}: env vars no settings field reads (typo or removed field): {unknown}"
    required = sorted((prefix + name).upper() for name, info in cls.model_fields.items() if info.is_required())
    missing = [name for name in required if name not in {k.upper() for k in env}]
    assert not missing, f"{service}: required settings not provided: {missing}"
    settings = build_settings(service, env, monkeypatch)  # prod refuses dev defaults here
    local = {
        name: value
        for name, value in settings.model_dump().items()
        if isinstance(value, str) and LOCAL_HOSTS.search(value)
    }
    assert not local, (
        f"{service}: settings still point at this machine: {local}; give them a value in "
        "deploy/k8s/generate.py (Svc.config) and deploy/compose.yaml"
    )
    return settings


_ED25519 = (
    Ed25519PrivateKey.generate()
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)


def placeholder_secret(secret: str, key: str, service: str) -> str:
    """A realistic value for a Secret key nobody can read here (operator-made or created by hand)."""
    if key == "username":
        return service
    if "signing-key" in key:
        return _ED25519
    if key.endswith("url"):
        return "https://sms-gateway.example.com/send"
    return f"Pl4ceholder-{secret}-{key}"


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(
    docs: Iterable[Mapping[str, Any]],
    container: Mapping[str, Any],
    *,
    service: str,
    present_secret: Any,
) -> dict[str, str]:
    """The environment Kubernetes would give `container`: envFrom ConfigMaps, then env with Secret
    values (`present_secret(name, key)` says whether that Secret key exists) and $(VAR) expansion."""
    docs = list(docs)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        data = config_map(docs, source["configMapRef"]["name"])["data"]
        env.update(data)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), item["value"])
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            cm = config_map(docs, ref["configMapKeyRef"]["name"])
            env[item["name"]] = cm["data"][ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref:
            secret, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            if present_secret(secret, key):
                env[item["name"]] = placeholder_secret(secret, key, service)
            else:
                assert ref["secretKeyRef"].get("optional"), f"{item['name']}: Secret {secret}/{key} is missing"
        else:
            raise AssertionError(f"unsupported env source {ref}")
    unresolved = {k: v for k, v in env.items() if _VAR.search(v)}
    assert not unresolved, f"unresolved $(VAR) references: {unresolved}"
    return env
