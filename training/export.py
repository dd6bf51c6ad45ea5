"""Export a trained Keras model as a versioned SavedModel in the model repository.

The SavedModel carries everything the service needs, so the service never imports
model-building code (and TensorFlow Serving could serve the same files):

- ``serving_default``: uint8 ``image [N,H,W,C]`` -> ``probabilities [N,K]``; with a
  ``training.trust.Trust``, the probabilities are temperature-scaled and two more outputs
  come: ``ood_score [N]`` (float32, larger = less like the training data) and
  ``in_distribution [N]`` (bool, the score within the version's threshold)
- ``activations``: same input -> every layer's output, keyed by layer name
- ``gradcam``: ``image`` + ``class_index [N]`` (int32, -1 = predicted class) ->
  ``gradcam/<conv layer>`` heatmaps ``[N,h,w]`` in 0..1 (computed on the conv block's
  activated output, i.e. after its BatchNorm/ReLU if any; score = log p(class)),
  ``saliency`` (|d score / d input| ``[N,H,W]``), ``gradient`` (d score / d input, signed,
  ``[N,H,W,C]``: integrated gradients average it along a path of scaled pictures),
  ``probabilities`` and the ``class_index``
- ``filters``: no input -> each conv layer's kernel ``[kh,kw,in,out]`` by layer name

Versions are written to a hidden temporary directory and renamed into place only when
complete, so a reader (the service's poller) never sees a half-written version.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from cnnlab.layout import list_versions
from training import architectures
from training import trust as trust_
from training.trust import Gaussians, Trust


def signature_names(model: keras.Model) -> list[str]:
    """The signatures ``write_saved_model`` exports for ``model`` (an MLP has no conv ones)."""
    names = ["serving_default", "activations"]
    return [*names, "gradcam", "filters"] if architectures.conv_layers(model) else names


def _signatures(model: keras.Model, trust: Trust | None
                ) -> dict[str, tuple[Callable[..., object], list[object]]]:
    shape = [None, *model.input_shape[1:]]
    image_spec = tf.TensorSpec(shape, tf.uint8, name="image")
    class_spec = tf.TensorSpec([None], tf.int32, name="class_index")
    layer_model = keras.Model(model.inputs, [layer.output for layer in model.layers])
    names = [layer.name for layer in model.layers]
    convs = architectures.conv_layers(model)
    blocks = [architectures.block_output(model, c) for c in convs]
    last = model.layers[-1]
    conv_model = keras.Model(model.inputs, [*(b.output for b in blocks), last.input])
    scored = trust_.feature_outputs(model)

    def probabilities(features: tf.Tensor) -> tf.Tensor:
        """The last (softmax) layer, its logits divided by the version's temperature."""
        if trust is None:
            return last(features)
        logits = tf.matmul(features, last.kernel) + last.bias
        return tf.nn.softmax(logits / trust.temperature)

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        if trust is None:
            return {"probabilities": model(tf.cast(image, tf.float32), training=False)}
        values = trust_.scored_values(scored, image, trust.picture)
        features = values[-1]
        score = ood_score(values, trust, tf.matmul(features, last.kernel) + last.bias)
        return {"probabilities": probabilities(features), "ood_score": score,
                "in_distribution": score <= trust.threshold}

    def activations(image: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = layer_model(tf.cast(image, tf.float32), training=False)
        return dict(zip(names, outputs, strict=True))

    def gradcam(image: tf.Tensor, class_index: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.cast(image, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            *maps, features = conv_model(x, training=False)
            probs = probabilities(features)
            predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
            chosen = tf.where(class_index < 0, predicted, class_index)
            # log p: unlike p, its gradient does not vanish when the softmax saturates
            score = tf.math.log(tf.maximum(tf.gather(probs, chosen, batch_dims=1), 1e-12))
        grads = tape.gradient(score, [*maps, x])
        out = {"probabilities": probs, "class_index": chosen, "gradient": grads[-1],
               "saliency": tf.reduce_max(tf.abs(grads[-1]), axis=-1)}
        for conv, fmap, grad in zip(convs, maps, grads[:-1], strict=True):
            # Grad-CAM (Selvaraju et al.): channel weights = spatially pooled gradients.
            weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)       # [N,1,1,C]
            cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))         # [N,h,w]
            peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
            out[f"gradcam/{conv.name}"] = tf.math.divide_no_nan(cam, peak)
        return out

    def filters() -> dict[str, tf.Tensor]:
        return {c.name: tf.convert_to_tensor(c.kernel) for c in convs}

    table: dict[str, tuple[Callable[..., object], list[object]]] = {
        "serving_default": (serve, [image_spec]),
        "activations": (activations, [image_spec]),
    }
    if convs:  # an MLP has no feature maps to weigh or kernels to show
        table["gradcam"] = (gradcam, [image_spec, class_spec])
        table["filters"] = (filters, [])
    assert list(table) == signature_names(model)
    return table


def ood_score(values: list[tf.Tensor], trust: Trust, logits: tf.Tensor) -> tf.Tensor:
    """The OOD score ``[N]`` of what it reads (``training.trust.scored_values``) and of
    the ``logits``, in the graph: the logarithms of each layer's distance over its scale,
    summed, plus the energy term when the version has one (``training.trust.EnergyTerm``)."""
    parts = [tf.math.log(mahalanobis(trust_.summarise(out), layer.gaussians) / layer.scale
                         + trust_.LOG_FLOOR)
             for out, layer in zip(values, trust.layers, strict=True)]
    if trust.energy is not None:
        t = trust.temperature
        energy = -t * tf.reduce_logsumexp(logits / t, axis=1)
        parts.append((energy - trust.energy.median) / trust.energy.scale)
    return tf.add_n(parts)


def mahalanobis(features: tf.Tensor, g: Gaussians) -> tf.Tensor:
    """Squared Mahalanobis distance of ``features [N,D]`` to the nearest class mean
    ``[N]`` (``training.trust.Gaussians.score``)."""
    z = tf.matmul(features - tf.constant(g.centre), tf.constant(g.whiten))      # [N,d]
    means = tf.constant(g.means)                                                # [K,d]
    d2 = (tf.reduce_sum(z * z, axis=1, keepdims=True) - 2 * tf.matmul(z, means, transpose_b=True)
          + tf.constant((g.means * g.means).sum(axis=1)))
    return tf.maximum(tf.reduce_min(d2, axis=1), 0.0)


def write_saved_model(model: keras.Model, target: Path, trust: Trust | None = None) -> None:
    """Write the SavedModel with all signatures into ``target`` (not atomic by itself);
    with ``trust``, the served probabilities are calibrated and scored for OOD."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, spec) in _signatures(model, trust).items():
        archive.add_endpoint(name=name, fn=fn, input_signature=spec)
    archive.write_out(str(target), verbose=False)


def next_version(model_dir: Path) -> int:
    versions = list_versions(model_dir)
    return (versions[-1] + 1) if versions else 1


def staging_dir(model_dir: Path) -> Path:
    """A hidden directory next to the versions, on the same filesystem (rename is atomic)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f".tmp-{uuid.uuid4().hex}"
    path.mkdir()
    return path


def publish(staged: Path, model_dir: Path) -> tuple[int, Path]:
    """Rename a complete staged version to the next free integer version."""
    for _ in range(100):
        version = next_version(model_dir)
        final = model_dir / str(version)
        try:
            staged.rename(final)  # fails if another writer took this number first
        except OSError:
            if final.exists():
                continue
            raise
        return version, final
    raise RuntimeError(f"could not find a free version number in {model_dir}")


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)
