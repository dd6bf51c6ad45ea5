"""Looking inside a model version: layer table, layer/channel selection, Grad-CAM overlay,
activation distances. Numbers only; the routes pick JSON, .npy or PNG."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from service.errors import NotFound, Unprocessable
from service.images import render
from service.serving.version import ServedVersion, signature_io


def require(sv: ServedVersion, signature: str, feature: str) -> None:
    if signature not in sv.signatures:
        raise Unprocessable(f"{feature} needs the {signature!r} signature, which model "
                            f"{sv.name!r} version {sv.version} does not have (it has "
                            f"{', '.join(sorted(sv.signatures))}); re-export it with "
                            "python -m training")


def layer_table(sv: ServedVersion) -> list[dict[str, Any]]:
    """Metadata's table (what model.summary() shows), else what the signature reveals."""
    layers = sv.info.metadata.get("layers")
    if layers:
        return list(layers)
    if "activations" not in sv.signatures:
        return []
    _, outputs = signature_io(sv.signatures["activations"])
    return [{"name": n, "type": None, "output_shape": [None, *t.shape[1:]], "params": None}
            for n, t in sorted(outputs.items())]


def layer_names(sv: ServedVersion) -> list[str]:
    require(sv, "activations", "activations")
    _, outputs = signature_io(sv.signatures["activations"])
    ordered = [row["name"] for row in layer_table(sv) if row["name"] in outputs]
    return ordered + sorted(set(outputs) - set(ordered))


def select_layers(sv: ServedVersion, spec: str | None, limit: int) -> list[str]:
    """``conv1,pool1`` or ``1,2`` (indices into the layer table) or all when empty."""
    names = layer_names(sv)
    if not spec:
        chosen = names
    else:
        chosen = []
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            if part.lstrip("-").isascii() and part.lstrip("-").isdigit():
                i = int(part)
                if not -len(names) <= i < len(names):
                    raise Unprocessable(f"layer index {i} out of range (0..{len(names) - 1})")
                chosen.append(names[i])
            elif part in names:
                chosen.append(part)
            else:
                raise NotFound(f"unknown layer {part!r}; layers are {', '.join(names)}")
    if len(chosen) > limit:
        raise Unprocessable(f"{len(chosen)} layers requested; the limit is {limit} per request")
    return list(dict.fromkeys(chosen))


def select_channels(value: np.ndarray, spec: str | None, limit: int, layer: str) -> np.ndarray:
    """Keep the chosen channels (last axis) of one image's activation ``[h,w,c]``/``[c]``.

    Without a choice every channel is kept (JSON size is bounded separately)."""
    n = value.shape[-1]
    if not spec:
        return value
    try:
        idx = [int(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise Unprocessable(f"channels must be comma-separated integers, got {spec!r}") from None
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise Unprocessable(f"channel {bad[0]} out of range for layer {layer!r} (0..{n - 1})")
    if len(idx) > limit:
        raise Unprocessable(f"{len(idx)} channels requested; the limit is {limit}")
    return value[..., idx]


def conv_layers(sv: ServedVersion) -> list[str]:
    require(sv, "gradcam", "Grad-CAM")
    _, outputs = signature_io(sv.signatures["gradcam"])
    convs = [k.split("/", 1)[1] for k in outputs if k.startswith("gradcam/")]
    order = [row["name"] for row in layer_table(sv)]
    return sorted(convs, key=lambda n: order.index(n) if n in order else len(order))


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float, scale: int = 8) -> np.ndarray:
    """Grad-CAM heatmap (0..1, any size) over the input as a model saw it (``[H, W, C]``,
    grayscale or RGB), as a BGR picture ``scale`` times the input's size (a large input
    is drawn at its own size)."""
    h, w = image.shape[:2]
    scale = max(1, min(scale, 256 // max(h, w)))
    size = (w * scale, h * scale)
    base = cv2.resize(render.viewable(image), size, interpolation=cv2.INTER_NEAREST)
    if base.ndim == 2:
        base = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)
    heat = cv2.resize(heatmap.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    return cv2.addWeighted(colored, alpha, base, 1 - alpha, 0)


def scaled_path(images: np.ndarray, steps: int) -> np.ndarray:
    """Integrated gradients' path from a black picture to each of ``images`` ``[N,H,W,C]``
    (uint8): ``steps`` pictures per image at the midpoints ``(k + 0.5) / steps`` of the
    way, rounded to the uint8 the signature takes, ``[N * steps, H, W, C]``."""
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    path = images[:, None].astype(np.float32) * alphas[None, :, None, None, None]
    return np.rint(path).astype(np.uint8).reshape(-1, *images.shape[1:])


def integrated_gradients(images: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Each pixel's share of ``log p(class)`` over a black picture's (Sundararajan et al.,
    2017): the picture times the mean gradient along ``scaled_path``, summed over the
    channels, ``[N, H, W]``. The shares add up to about the difference of the two
    ``log p``."""
    n = len(images)
    mean_gradient = gradients.reshape(n, -1, *images.shape[1:]).mean(axis=1)
    return np.asarray((images.astype(np.float32) * mean_gradient).sum(axis=-1))


def distance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """How far apart two activations of the same shape are."""
    fa, fb = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = float(np.linalg.norm(fa)), float(np.linalg.norm(fb))
    cosine = float(fa @ fb / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return {"cosine_distance": 1.0 - cosine, "mean_abs_diff": float(np.abs(fa - fb).mean()),
            "relative_l2": float(np.linalg.norm(fa - fb) / max(na, 1e-12))}
