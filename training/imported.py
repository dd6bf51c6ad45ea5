"""Publish a Keras image classifier trained elsewhere as a version with everything the
service uses: ``python -m training import model.keras --name N --data-dir PATH``.

The model (a ``.keras`` or ``.h5`` file; Sequential or functional, branches allowed) must
take pixels ``[N, H, W, C]`` in 0..255 (C = 1 or 3; a model that wants 0..1 starts with a
``Rescaling(1/255)`` layer, as the Keras applications do with their own preprocessing),
have conv layers at its top level, and end in a Dense layer that gives the class
probabilities (softmax) or logits, possibly followed by a softmax layer. What comes out
is what ``python -m training train`` publishes: the inspection signatures, class names
from the folder, the OOD statistics and temperature fitted on the folder's training and
validation pictures, the test figures, reports and metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnlab.devices import configure_devices
from cnnlab.layout import METADATA_FILE
from training import architectures, export, folder, onnx_export, trust
from training.data import DataError, Dataset
from training.evaluate import evaluate_saved_model
from training.train import TrainResult, environment, model_card, write_reports

ARCH = "imported"
_SOFTMAX_LAYERS = (keras.layers.Softmax, keras.layers.Activation)


def load(path: Path) -> keras.Model:
    """The Keras model in ``path``; a ``DataError`` naming what is wrong."""
    if path.is_dir():
        raise DataError(f"{path}: a SavedModel directory holds no Keras layers to inspect; "
                        "save the model with model.save('model.keras') and import that")
    if path.suffix not in (".keras", ".h5"):
        raise DataError(f"{path}: not a Keras model file (.keras or .h5)")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds for a bad file; one line is enough
        raise DataError(f"{path}: cannot be loaded by Keras ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(model, keras.Model):
        raise DataError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    return model


def _is_softmax(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    return (isinstance(layer, keras.layers.Activation)
            and layer.get_config().get("activation") == "softmax")


def classifier(model: keras.Model) -> keras.Model:
    """``model`` as the export wants it: conv layers at its top level and a last Dense
    layer with a softmax (a logits head, or a Dense layer then a softmax layer, becomes
    that; the weights are shared, not copied). A ``DataError`` names what is missing."""
    shape = model.input_shape
    if (not isinstance(shape, tuple) or len(shape) != 4 or shape[3] not in (1, 3)
            or not all(isinstance(d, int) for d in shape[1:3])):
        raise DataError(f"the model's input must be pictures [N, H, W, 1 or 3] of a known "
                        f"size, not {shape}")
    if not architectures.conv_layers(model):
        nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
        where = (f" (they are inside the nested model(s) {', '.join(nested)}: import the "
                 "model built with its layers at the top level)" if nested else "")
        raise DataError(f"the model has no Conv2D layers{where}; feature maps, filters "
                        "and Grad-CAM need them")
    last = model.layers[-1]
    dense = model.layers[-2] if _is_softmax(last) and len(model.layers) > 1 else last
    if not isinstance(dense, keras.layers.Dense):
        raise DataError(f"the model must end in a Dense layer giving the class "
                        f"probabilities (softmax) or logits; it ends in "
                        f"{type(dense).__name__} {dense.name!r}")
    activation = dense.get_config().get("activation")
    if dense is last and activation == "softmax":
        return model
    if activation not in ("softmax", "linear") or (dense is not last and
                                                    activation == "softmax"):
        raise DataError(f"the last Dense layer {dense.name!r} has activation "
                        f"{activation!r}; it must give logits (linear) or softmax "
                        "probabilities")
    head = keras.layers.Dense(dense.units, activation="softmax", name="probs")
    probs = head(dense.input)
    head.set_weights(dense.get_weights())
    return keras.Model(model.inputs[0], probs, name=model.name)  # (one picture input)


def import_model(path: Path, name: str, data_dir: Path, models_dir: Path,
                 validation: str = "0.1", seed: int = 42) -> TrainResult:
    """Load, check and publish the model in ``path`` as the next version of ``name``,
    its trust fitted and its figures measured on the folder ``data_dir``."""
    device = configure_devices()
    model = classifier(load(path))
    _, h, w, c = model.input_shape
    loaded = folder.load(data_dir, validation, (h, w), c, seed)
    ds = loaded.dataset
    k = model.output_shape[-1]
    if k != len(ds.class_names):
        raise DataError(f"the model gives {k} classes; {data_dir} has "
                        f"{len(ds.class_names)} ({', '.join(ds.class_names)})")
    model_dir = models_dir / name
    staged = export.staging_dir(model_dir)
    try:
        fitted = trust.fit_for(model, ds, loaded.validation)
        export.write_saved_model(model, staged, fitted)
        ev = evaluate_saved_model(staged, ds.x_test, ds.y_test, ds.class_names)
        metadata = {**describe(name, path, data_dir, ds, model, loaded), **ev.to_json(),
                    **fitted.to_json(), **onnx_export.write(staged, ds.x_test),
                    **environment(device)}
        (staged / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        write_reports(model, staged, ds, {}, ev.confusion_matrix, ev.predictions)
        version, final = export.publish(staged, model_dir)
    except BaseException:
        export.discard(staged)
        raise
    return TrainResult(version=version, path=final, metadata=metadata)


def describe(name: str, path: Path, data_dir: Path, ds: Dataset, model: keras.Model,
             loaded: folder.Loaded) -> dict[str, Any]:
    """What the service reads to serve the version, and where it came from."""
    return {
        **model_card(name, folder.FOLDER, ARCH, f"a Keras model imported from {path.name}",
                     ds, model),
        "imported_from": str(path),
        "hyperparameters": {"data_dir": str(data_dir), "validation": loaded.validation},
        "history": {},
        "training_seconds": None,
        "test_images": int(np.size(ds.y_test)),
    }

