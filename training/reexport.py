"""Re-export a version with the current signature set, keeping its trained weights.

The architecture named in ``metadata.json`` is rebuilt, its weights are read back from
the old SavedModel's variables (matched by path, e.g. ``best/conv1/kernel``), the rebuilt
model is checked to give the same probabilities as the old ``serving_default``, its
temperature and OOD score are fitted on its dataset (``training.trust``), and the result is
published as a new version with the old metadata (test scores measured again) and reports.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cnnlab.layout import METADATA_FILE
from training import architectures, export, folder, onnx_export, trust
from training.evaluate import evaluate_saved_model


class ReexportError(Exception):
    pass


def rebuild(version_dir: Path) -> keras.Model:
    """The Keras model of a version, its weights read back from the SavedModel, checked to
    give the same probabilities as the version's ``serving_default``."""
    meta: dict[str, Any] = json.loads((version_dir / METADATA_FILE).read_text())
    loaded = tf.saved_model.load(str(version_dir))
    model = architectures.build(meta["arch"], tuple(meta["input_shape"]),  # type: ignore[arg-type]
                                len(meta["class_names"]))
    saved = {v.name.removesuffix(":0"): v for v in loaded.variables}
    missing = [w.path for w in model.weights if w.path not in saved]
    if missing:
        raise ReexportError(f"{version_dir}: variables not found in the SavedModel: {missing}")
    for w in model.weights:
        w.assign(saved[w.path].numpy())

    x = np.random.default_rng(0).integers(0, 256, (16, *meta["input_shape"])).astype(np.uint8)
    old = loaded.signatures["serving_default"](image=tf.constant(x))["probabilities"].numpy()
    temperature = meta.get("calibration", {}).get("temperature", 1.0)  # served logits / T
    new = trust.softmax(trust.logits_of(model, trust.penultimate_features(model, x)), temperature)
    if not np.allclose(old, new, atol=1e-5):
        raise ReexportError(f"{version_dir}: rebuilt model disagrees with the SavedModel")
    return model


def reexport(version_dir: Path, data_dir: Path | None = None) -> tuple[int, Path]:
    """Publish ``version_dir``'s weights again as a new version, with the current
    signatures and, fitted on its dataset, calibrated probabilities and an OOD score
    (``training.trust``); its test scores are measured again on the new SavedModel."""
    meta: dict[str, Any] = json.loads((version_dir / METADATA_FILE).read_text())
    if meta.get("arch") not in architectures.names():
        raise ReexportError(f"{version_dir}: its architecture {meta.get('arch')!r} is not "
                            "one of training's (an imported model: import it again)")
    model = rebuild(version_dir)
    ds, validation = folder.of_version(meta, data_dir)
    fitted = trust.fit_for(model, ds, validation)
    model_dir = version_dir.parent
    staged = export.staging_dir(model_dir)
    try:
        export.write_saved_model(model, staged, fitted)
        scores = evaluate_saved_model(staged, ds.x_test, ds.y_test, ds.class_names)
        if scores.accuracy != meta.get("test_accuracy", scores.accuracy):
            raise ReexportError(f"{version_dir}: test accuracy changed from "
                                f"{meta['test_accuracy']} to {scores.accuracy}")
        meta.update(signatures=export.signature_names(model), **scores.to_json(),
                    **fitted.to_json(), **onnx_export.write(staged, ds.x_test),
                    reexported_from=int(version_dir.name),
                    reexported=datetime.now(UTC).isoformat(timespec="seconds"))
        (staged / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        if (version_dir / "reports").is_dir():
            shutil.copytree(version_dir / "reports", staged / "reports")
        return export.publish(staged, model_dir)
    except BaseException:
        export.discard(staged)
        raise
