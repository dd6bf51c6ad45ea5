"""Build an InferenceService manifest from KServe's typed objects (its Python SDK), which
refuse a field KServe does not have; print what the tests check, as JSON.

    python tests/deploy/kserve_build.py MANIFEST.yaml

A script, run in its own process: the SDK registers protobuf messages of the package
``inference`` that clash with tritonclient's, which the service imports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import kserve
import kubernetes.client
import yaml

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


def main(path: str) -> int:
    manifest = yaml.safe_load(Path(path).read_text())
    try:
        isvc = build(manifest, "V1beta1InferenceService", "InferenceService")
    except (AssertionError, TypeError, ValueError) as exc:
        print(f"not an InferenceService: {exc}", file=sys.stderr)
        return 1
    [container] = isvc.spec.predictor.containers
    mount = next(m for m in container.volume_mounts if m.name == "models")
    volume = next(v for v in isvc.spec.predictor.volumes if v.name == "models")
    guard = container.security_context
    print(json.dumps({
        "api_version": isvc.api_version, "kserve_group": kserve.constants.KSERVE_GROUP,
        "kind": isvc.kind, "image": container.image,
        "env": {e.name: e.value for e in container.env},
        "secret_env": {e.name: e.value_from.secret_key_ref.name for e in container.env
                       if e.value_from is not None},
        "hardened": [guard.run_as_non_root, guard.allow_privilege_escalation,
                     guard.read_only_root_filesystem, guard.capabilities.drop],
        "ports": [p.container_port for p in container.ports],
        "readiness_path": container.readiness_probe.http_get.path,
        "gpu_limit": container.resources.limits["nvidia.com/gpu"],
        "mount_path": mount.mount_path, "read_only": mount.read_only,
        "claim": volume.persistent_volume_claim.claim_name}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
