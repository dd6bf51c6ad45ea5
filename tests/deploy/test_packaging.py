"""Docker, compose and Kubernetes files are valid (no Docker engine runs here)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(BIN))
    if path is None:
        pytest.fail(f"{name} is missing: make test installs it")
    return path


@pytest.mark.parametrize("profile", ["gpu", "cpu", "scale"])
def test_compose_file_is_valid_for_each_profile(profile: str) -> None:
    proc = subprocess.run([tool("docker-compose"), "--profile", profile, "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_compose_services_profiles_gpu_and_mounts() -> None:
    proc = subprocess.run([tool("docker-compose"), "config"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    services = yaml.safe_load(proc.stdout)["services"]
    profiles = {name: svc.get("profiles") for name, svc in services.items()}
    assert profiles == {"cnnlab-gpu": ["gpu"], "cnnlab-cpu": ["cpu"],
                        "cnnlab-replica": ["scale"], "nginx": ["scale"]}
    [gpu] = services["cnnlab-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    for name in ("cnnlab-gpu", "cnnlab-cpu", "cnnlab-replica"):
        svc = services[name]
        assert any(v.endswith("/models:/app/models:ro") for v in svc["volumes"])
        assert "/health/ready" in " ".join(svc["healthcheck"]["test"])
    assert services["cnnlab-replica"]["deploy"]["replicas"] == 2
    # every profile keeps the shared settings (the cpu profile adds to them)
    for name in ("cnnlab-gpu", "cnnlab-cpu", "cnnlab-replica"):
        assert services[name]["environment"]["CNNLAB_WORKERS"] == "auto", name
    assert services["cnnlab-cpu"]["environment"]["CUDA_VISIBLE_DEVICES"] == ""
    for name in ("cnnlab-gpu", "cnnlab-cpu"):  # HTTP and gRPC
        assert {(int(p["target"]), int(p["published"])) for p in services[name]["ports"]} == {
            (8000, 8000), (8500, 8500)}, services[name]["ports"]
    assert any("deploy/nginx/nginx.conf" in v for v in services["nginx"]["volumes"])


def test_dockerfile_lints_clean() -> None:
    proc = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_installs_like_the_makefile() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    [docker_cmd] = [shlex.split(m) for m in re.findall(r"RUN pip install ([^\n]+)", docker)]
    make_flags = shlex.split(re.search(r"^PIP_INSTALL := pip install (.+)$", make, re.M)
                             .group(1))  # type: ignore[union-attr]
    make_targets = re.findall(r"\$\(PIP_INSTALL\) -e (\S+)", make)  # the venv; bench extras
    assert set(make_flags) <= set(docker_cmd), (make_flags, docker_cmd)
    # both install this project from pyproject.toml (dependencies pinned in one place)
    assert docker_cmd[-1].startswith(".[") and make_targets
    assert all(shlex.split(t)[0].startswith(".[") for t in make_targets)
    assert "matplotlib" not in docker  # serving image: no training/dev extras
    assert re.search(r"^USER (?!root)", docker, re.M)
    assert "HEALTHCHECK" in docker and "/health/ready" in docker


def test_kubernetes_manifests_validate() -> None:
    files = sorted(str(p) for p in (ROOT / "deploy" / "k8s").glob("*.yaml"))
    assert len(files) == 4
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deployment = (ROOT / "deploy" / "k8s" / "deployment.yaml").read_text()
    for needle in ("/health/live", "/health/ready", "nvidia.com/gpu", "containerPort: 8500"):
        assert needle in deployment
    # the claim the Deployment mounts is shipped
    [claim] = re.findall(r"claimName: ([\w-]+)", deployment)
    shipped = yaml.safe_load((ROOT / "deploy" / "k8s" / "models-pvc.yaml").read_text())
    assert shipped["kind"] == "PersistentVolumeClaim" and shipped["metadata"]["name"] == claim
