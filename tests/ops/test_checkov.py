"""checkov on the Dockerfiles and on the Kubernetes overlays as kustomize renders them.

checkov runs isolated from the project's lock (it pins many libraries of its own): `uvx` installs
the pinned version into uv's tool cache on first use. Skips are listed, with their reasons, in
tests/ops/checkov.yaml."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.ops.platform import OVERLAYS, ROOT, render_overlay

CHECKOV = "checkov==3.3.30"
CONFIG = ROOT / "tests" / "ops" / "checkov.yaml"


def checkov_command() -> list[str]:
    if uvx := shutil.which("uvx"):
        return [uvx, "--python", "3.11", "--from", CHECKOV, "checkov"]
    if uv := shutil.which("uv"):
        return [uv, "tool", "run", "--python", "3.11", "--from", CHECKOV, "checkov"]
    pytest.fail("uv is not installed (deploy/ensure-python.sh installs it)")


def _json_documents(text: str) -> list[dict]:
    """checkov prints one JSON document per scanned directory (an object or a list of them)."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        documents.extend(value if isinstance(value, list) else [value])
    return documents


def test_checkov_passes_on_dockerfiles_and_rendered_manifests(tmp_path):
    rendered = tmp_path / "k8s"
    rendered.mkdir()
    for overlay in OVERLAYS:
        docs = render_overlay(overlay)
        (rendered / f"{overlay}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    command = [
        *checkov_command(),
        "--config-file",
        str(CONFIG),
        "--directory",
        str(rendered),
        "--directory",
        str(ROOT / "deploy" / "docker"),
        "--framework",
        "kubernetes",
        "dockerfile",
        "--skip-download",  # no call home for guidelines: this machine reaches package registries only
        "--output",
        "json",
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.stdout.strip(), result.stderr[-3000:]
    reports = _json_documents(result.stdout)
    frameworks = {r["check_type"] for r in reports}
    assert frameworks == {"kubernetes", "dockerfile"}, frameworks
    skipped_allowed = set(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["skip-check"])
    for report in reports:
        failed = report["results"]["failed_checks"]
        assert not failed, "\n".join(f"{c['check_id']} {c['check_name']}: {c['resource']}" for c in failed)
        assert report["summary"]["passed"] > 0
        for check in report["results"].get("skipped_checks", []):
            assert check["check_id"] in skipped_allowed
    assert result.returncode == 0, result.stderr[-3000:]
