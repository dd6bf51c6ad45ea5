"""deploy/kserve/inferenceservice.yaml is a valid InferenceService for this image: built
field by field from KServe's own typed objects (``kserve_build.py``, in its own process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import ROOT

MANIFEST = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
BUILD = Path(__file__).with_name("kserve_build.py")


def build(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BUILD), str(path)], capture_output=True,
                          text=True, timeout=120)


def test_inference_service_is_built_by_kserves_typed_objects() -> None:
    done = build(MANIFEST)
    assert done.returncode == 0, done.stderr
    isvc = json.loads(done.stdout)
    assert isvc["api_version"] == f"{isvc['kserve_group']}/v1beta1"
    assert isvc["kind"] == "InferenceService"
    # this image, listening where KServe sends traffic, ready when the models are
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isvc["image"] == compose["x-service"]["image"]
    assert isvc["ports"] == [int(isvc["env"]["CNNLAB_PORT"])]
    assert isvc["readiness_path"] == "/health/ready" and isvc["gpu_limit"] == "1"
    # the models volume the training Job writes, where the service looks for models
    assert isvc["mount_path"] == isvc["env"]["CNNLAB_MODELS_DIR"] and isvc["read_only"]
    assert isvc["claim"] == "cnn-lab-models"
    # keys from the Secret the Deployment uses; no privileges, nothing writable but /tmp
    assert isvc["secret_env"] == {"CNNLAB_API_KEY": "cnn-lab-keys",
                                  "CNNLAB_ADMIN_API_KEY": "cnn-lab-keys"}
    assert isvc["hardened"] == [True, False, True, ["ALL"]]


def test_a_field_kserve_lacks_is_refused(tmp_path: Path) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["spec"]["predictor"]["containers"][0]["protocol"] = "v2"  # not a container field
    bad = tmp_path / "isvc.yaml"
    bad.write_text(yaml.safe_dump(manifest))
    done = build(bad)
    assert done.returncode == 1 and "has no field(s) ['protocol']" in done.stderr
