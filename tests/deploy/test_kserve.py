"""deploy/kserve/inferenceservice.yaml is a valid InferenceService for this image: built
field by field from KServe's own typed objects (its Python SDK), which refuse a field
KServe does not have."""

from __future__ import annotations

from typing import Any

import kserve
import kubernetes.client
import yaml

from tests.helpers import ROOT

SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def build(data: Any, kind: str, where: str = "") -> Any:
    """``data`` (parsed YAML) as the SDK type ``kind``; fails on any field it lacks."""
    if kind.lower().startswith("list["):  # the SDKs write list[X] or List[X]
        assert isinstance(data, list), f"{where}: expected a list"
        return [build(item, kind[5:-1], f"{where}[{i}]") for i, item in enumerate(data)]
    if kind.lower().startswith(("dict(", "dict[")):  # dict(str, X) or Dict[str, X]
        value_kind = kind[kind.index(",") + 1:-1].strip()
        assert isinstance(data, dict), f"{where}: expected a mapping"
        return {k: build(v, value_kind, f"{where}.{k}") for k, v in data.items()}
    if kind in SCALARS:
        assert isinstance(data, SCALARS[kind]), f"{where}: {data!r} is not {kind}"
        return data
    cls = getattr(kserve, kind, None) or getattr(kubernetes.client, kind)
    fields = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    assert isinstance(data, dict), f"{where}: expected a {kind}"
    unknown = sorted(set(data) - set(fields))
    assert not unknown, f"{where}: {kind} has no field(s) {unknown}"
    return cls(**{fields[k]: build(v, cls.openapi_types[fields[k]], f"{where}.{k}")
                  for k, v in data.items()})


def test_inference_service_is_built_by_kserves_typed_objects() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "kserve" / "inferenceservice.yaml").read_text())
    isvc = build(manifest, "V1beta1InferenceService", "InferenceService")
    assert isvc.api_version == f"{kserve.constants.KSERVE_GROUP}/v1beta1"
    assert isvc.kind == "InferenceService"
    [container] = isvc.spec.predictor.containers
    env = {e.name: e.value for e in container.env}
    # this image, listening where KServe sends traffic, ready when the models are
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert container.image == compose["x-service"]["image"]
    assert [p.container_port for p in container.ports] == [int(env["CNNLAB_PORT"])]
    assert container.readiness_probe.http_get.path == "/health/ready"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    # the models volume the training Job writes, where the service looks for models
    [mount] = container.volume_mounts
    assert mount.mount_path == env["CNNLAB_MODELS_DIR"] and mount.read_only
    [volume] = isvc.spec.predictor.volumes
    assert volume.persistent_volume_claim.claim_name == "cnn-lab-models"


def test_the_builder_refuses_a_field_kserve_lacks() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "kserve" / "inferenceservice.yaml").read_text())
    manifest["spec"]["predictor"]["containers"][0]["protocol"] = "v2"  # not a container field
    try:
        build(manifest, "V1beta1InferenceService")
    except AssertionError as exc:
        assert "has no field(s) ['protocol']" in str(exc)
    else:
        raise AssertionError("an unknown field was accepted")
