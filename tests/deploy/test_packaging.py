"""Docker, compose and Kubernetes files are valid (no Docker engine runs here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    for name in ("cnnlab-gpu", "cnnlab-cpu"):  # HTTP and gRPC, on loopback by default
        assert set(services[name]["ports"]) == {"127.0.0.1:8000:8000/tcp",
                                                "127.0.0.1:8500:8500/tcp"}, name
    assert services["nginx"]["ports"] == ["127.0.0.1:8000:8080/tcp"]
    assert any("deploy/nginx/nginx.conf" in v for v in services["nginx"]["volumes"])
    for name in ("cnnlab-gpu", "cnnlab-cpu", "cnnlab-replica"):  # hardened, pinned
        svc = services[name]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert not svc["image"].endswith(":latest"), name
    assert not services["nginx"]["image"].endswith(":latest")


def test_compose_publishes_beyond_loopback_only_when_told() -> None:
    proc = subprocess.run([tool("docker-compose"), "--profile", "cpu", "config"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True,
                          env={"PATH": os.environ["PATH"], "CNNLAB_PUBLISH_ADDR": "0.0.0.0",
                               "CNNLAB_API_KEY": "from-the-shell"})
    svc = yaml.safe_load(proc.stdout)["services"]["cnnlab-cpu"]
    assert "0.0.0.0:8000:8000/tcp" in svc["ports"]
    assert svc["environment"]["CNNLAB_API_KEY"] == "from-the-shell"


def test_dockerfile_lints_clean() -> None:
    proc = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_installs_like_the_makefile() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    server_cmd, trainer_cmd = [shlex.split(m) for m in
                               re.findall(r"RUN pip install ([^\n]+)", docker)]
    make_flags = shlex.split(re.search(r"^PIP_INSTALL := pip install (.+)$", make, re.M)
                             .group(1))  # type: ignore[union-attr]
    make_targets = re.findall(r"\$\(PIP_INSTALL\) -e (\S+)", make)  # the venv; bench extras
    for docker_cmd in (server_cmd, trainer_cmd):
        assert set(make_flags) <= set(docker_cmd), (make_flags, docker_cmd)
        # both install this project from pyproject.toml (dependencies pinned in one place)
        assert docker_cmd[-1].startswith(".[") and make_targets
    assert "training" in trainer_cmd[-1] and "training" not in server_cmd[-1]
    assert all(shlex.split(t)[0].startswith(".[") for t in make_targets)
    assert "matplotlib" not in docker  # extras come from pyproject.toml, not listed here
    # the server is the default (last) stage, built on the shared base without the trainer
    stages = re.findall(r"^FROM \S+ AS (\w+)", docker, re.M)
    assert stages == ["base", "trainer", "server"]
    assert re.search(r"^USER (?!root)", docker, re.M)
    assert "HEALTHCHECK" in docker and "/health/ready" in docker


def test_kubernetes_manifests_validate() -> None:
    files = sorted(str(p) for p in (ROOT / "deploy" / "k8s").glob("*.yaml"))
    assert len(files) == 5
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deployment = (ROOT / "deploy" / "k8s" / "deployment.yaml").read_text()
    for needle in ("/health/live", "/health/ready", "nvidia.com/gpu", "containerPort: 8500"):
        assert needle in deployment
    pod = yaml.safe_load(deployment)["spec"]["template"]["spec"]
    [server] = pod["containers"]
    assert server["securityContext"] == {"allowPrivilegeEscalation": False,
                                         "readOnlyRootFilesystem": True,
                                         "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not server["image"].endswith(":latest")
    env = {e["name"]: e.get("value") for e in server["env"]}
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]["secretName"]
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert env["CNNLAB_API_KEY_FILE"].startswith(mounts["keys"]) and keys == "cnn-lab-keys"
    # the claim the Deployment mounts is shipped
    [claim] = re.findall(r"claimName: ([\w-]+)", deployment)
    shipped = yaml.safe_load((ROOT / "deploy" / "k8s" / "models-pvc.yaml").read_text())
    assert shipped["kind"] == "PersistentVolumeClaim" and shipped["metadata"]["name"] == claim


def test_training_job_builds_tf_config_for_each_indexed_pod() -> None:
    """The Job's shell builds TF_CONFIG from WORKERS and the pod's index: run it here with
    ``exec`` replaced by ``echo``, and read back what TensorFlow would get."""
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "train-job.yaml").read_text()))
    service, job = (next(d for d in docs if d["kind"] == k) for k in ("Service", "Job"))
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"][
        "name"]
    [container] = pod["containers"]
    workers = next(int(e["value"]) for e in container["env"] if e["name"] == "WORKERS")
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == workers
    script = container["args"][0].replace("exec python -m training", "echo $TF_CONFIG; echo")
    name = job["metadata"]["name"]
    for index in range(workers):
        out = subprocess.run(container["command"] + [script], capture_output=True, text=True,
                             env={"WORKERS": str(workers), "JOB_COMPLETION_INDEX": str(index),
                                  "PATH": "/usr/bin:/bin"}, timeout=10, check=True).stdout
        tf_config, command = out.splitlines()[:2]
        assert json.loads(tf_config) == {
            "cluster": {"worker": [f"{name}-{i}.{pod['subdomain']}:2222"
                                   for i in range(workers)]},
            "task": {"type": "worker", "index": index}}
        assert "--strategy multi-worker" in command and "--models-dir /app/models" in command
    # it writes where the serving Deployment reads
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"])
    assert mounts["models"] == "/app/models" and claim == "cnn-lab-models"
    assert not container["image"].endswith(":latest")
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # only the Job's own pods reach the collective port
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"] == pod_labels(job)
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": pod_labels(job)}}]
    assert rule["ports"] == [{"port": 2222, "protocol": "TCP"}]


def pod_labels(job: dict[str, Any]) -> dict[str, str]:
    return dict(job["spec"]["template"]["metadata"]["labels"])
