"""Train one model and export it as a new version: config -> strategy -> data -> model ->
fit (resumable) -> export -> evaluate (from the SavedModel) -> reports -> metadata ->
publish. Under ``multi-worker`` every worker trains and saves; only the chief publishes."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cnnlab.devices import configure_devices
from cnnlab.layout import METADATA_FILE
from training import (
    architectures,
    captures,
    distribute,
    export,
    folder,
    onnx_export,
    reports,
    sent,
    trust,
)
from training.checkpoints import Backup
from training.config import TrainConfig, validation_cut
from training.data import Dataset, load_idx_dir
from training.evaluate import evaluate_saved_model
from training.reexport import rebuild

log = logging.getLogger(__name__)


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop once an epoch's training accuracy exceeds a threshold (tutorial 001)."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if logs and logs.get("accuracy", 0.0) > self.threshold:
            print(f"\nReached {logs['accuracy']:.4f} > {self.threshold} training accuracy "
                  f"after epoch {epoch + 1}: stopping.", flush=True)
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


@dataclass(frozen=True)
class TrainResult:
    version: int
    path: Path
    metadata: dict[str, Any]


def learning_rate(cfg: TrainConfig, steps: int, replicas: int = 1) -> Any:
    """The learning rate of ``steps`` training steps: the given one (None: the optimizer's
    default) times ``replicas`` (the linear scaling rule: the global batch is that many
    times larger), or with ``cosine`` a warm-up from a tenth of that over the first 5 % of
    the steps, then cosine decay to zero."""
    if cfg.lr_schedule != "cosine":
        return cfg.learning_rate * replicas if cfg.learning_rate is not None else None
    peak = (cfg.learning_rate if cfg.learning_rate is not None else 1e-3) * replicas
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10, decay_steps=max(1, steps - steps // 20),
        warmup_target=peak, warmup_steps=steps // 20)


def make_optimizer(cfg: TrainConfig, steps: int,
                   replicas: int = 1) -> keras.optimizers.Optimizer:
    classes = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
               "rmsprop": keras.optimizers.RMSprop, "adadelta": keras.optimizers.Adadelta}
    rate = learning_rate(cfg, steps, replicas)
    return classes[cfg.optimizer](**({} if rate is None else {"learning_rate": rate}))


def augmenter(dataset: str, seed: int) -> keras.Sequential:
    """Random label-preserving distortions. Digits: shifts, zoom, small rotations.
    Clothing is centred at a fixed scale, so only mirror images and small shifts (zoom and
    larger shifts made version 1 underfit: 91.1 %). A folder's pictures: shifts and zoom,
    the border reflected (a mirror image may change the class: text, arrows)."""
    if dataset == "fashion_mnist":
        aug: list[keras.layers.Layer] = [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=seed),
        ]
    elif dataset == folder.FOLDER:
        aug = [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        ]
    else:
        aug = [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
        ]
    return keras.Sequential(aug, name="augment")


def split(cfg: TrainConfig, ds: Dataset) -> tuple[tuple[np.ndarray, np.ndarray],
                                                   tuple[np.ndarray, np.ndarray] | None]:
    """Training arrays and validation arrays (or None) as ``cfg.validation`` says."""
    if cfg.validation == "none":
        return (ds.x_train, ds.y_train), None
    if cfg.validation == "test":
        return (ds.x_train, ds.y_train), (ds.x_test, ds.y_test)
    cut = validation_cut(len(ds.x_train), cfg.validation)
    return (ds.x_train[:cut], ds.y_train[:cut]), (ds.x_train[cut:], ds.y_train[cut:])


def pipeline(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, k: int, *, training: bool,
             batch_size: int | None = None, sent_x: np.ndarray | None = None
             ) -> tf.data.Dataset:
    """The input pipeline: shuffled indices -> batches of images gathered from memory
    (with ``sent_x``, each swapped for its copy as sent with probability ``cfg.as_sent``)
    -> float -> augment (training, on the fly, in parallel with the model's step) ->
    prefetch. Shuffling indices and gathering whole batches costs one op per batch where
    shuffling the images themselves costs several per image. ``batch_size``: the global
    batch (default ``cfg.batch_size``). Every worker builds the same pipeline (same seed)
    and keeps its share of the batches."""
    images, labels = tf.constant(x), tf.one_hot(y, k)
    copies = tf.constant(sent_x) if training and sent_x is not None else None

    def gather(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, i)
        if copies is not None:
            swap = tf.random.uniform(tf.shape(i), seed=cfg.seed) < cfg.as_sent
            batch = tf.where(swap[:, None, None, None], tf.gather(copies, i), batch)
        return tf.cast(batch, tf.float32), tf.gather(labels, i)

    ds = tf.data.Dataset.range(len(x))
    if training:
        ds = ds.shuffle(len(x), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size or cfg.batch_size).map(gather,
                                                    num_parallel_calls=tf.data.AUTOTUNE)
    return finish(ds, cfg, training)


def finish(ds: tf.data.Dataset, cfg: TrainConfig, training: bool) -> tf.data.Dataset:
    """A pipeline's batches -> augmented (training, on the fly, in parallel with the
    model's step) -> prefetched -> this worker's share."""
    if training and cfg.augment:
        aug = augmenter(cfg.dataset, cfg.seed)
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return distribute.shard_by_data(ds.prefetch(tf.data.AUTOTUNE))


def training_data(cfg: TrainConfig, ds: Dataset, x: np.ndarray, y: np.ndarray, k: int,
                  batch_size: int) -> tuple[tf.data.Dataset, int]:
    """The training batches and how many pictures an epoch sees: a folder's files streamed
    from disk, or the arrays ``x``/``y`` (with copies as sent when ``cfg.as_sent``)."""
    if ds.stream is not None:
        return finish(ds.stream.dataset(batch_size, k, cfg.seed), cfg, True), len(ds.stream)
    sent_x = (sent.as_sent(x, cfg.dataset, np.random.default_rng(cfg.seed))
              if cfg.as_sent > 0 else None)
    return pipeline(x, y, cfg, k, training=True, batch_size=batch_size, sent_x=sent_x), len(x)


def layer_table(model: keras.Model) -> list[dict[str, Any]]:
    """What ``model.summary()`` prints, plus kernel size and activation where they apply."""
    rows = []
    for layer in model.layers:
        cfg = layer.get_config()
        act = cfg.get("activation")
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": list(layer.output.shape),
            "params": int(layer.count_params()),
            "kernel_size": list(cfg["kernel_size"]) if "kernel_size" in cfg else None,
            "activation": act if isinstance(act, str) else (
                act.get("class_name") if isinstance(act, dict) else None),
        })
    return rows


def source_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=5, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class Run:
    """How a model was trained: what the version's metadata records of the run."""

    strategy: str
    replicas: int
    workers: int
    global_batch: int
    history: dict[str, list[float]]
    seconds: float
    resumed_at_epoch: int
    stopped_early_at_epoch: int | None


def train(cfg: TrainConfig, ds: Dataset) -> TrainResult | None:
    """Train ``cfg.arch`` on ``ds`` and publish it as the next version of
    ``cfg.model_name``; None on a worker that is not the chief (it publishes nothing)."""
    device = configure_devices()
    task = distribute.task_from_env()
    strategy_name, strategy = distribute.make_strategy(cfg.strategy, task)
    keras.utils.set_random_seed(cfg.seed)
    backup = Backup(cfg, task)
    model, run = fit(cfg, ds, task, backup, strategy_name, strategy)
    if not task.is_chief:  # saving takes part in collectives: write, then throw away
        scratch = Path(tempfile.mkdtemp(prefix=f"cnnlab-{task.name}-"))
        try:
            export.write_saved_model(model, scratch / "saved_model")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        backup.remove()
        return None
    result = publish(cfg, ds, model, run, device)
    backup.remove()
    return result


def compile_model(cfg: TrainConfig, input_shape: tuple[int, ...], classes: int, steps: int,
                  strategy: tf.distribute.Strategy) -> keras.Model:
    """``cfg.arch`` built and compiled under ``strategy``'s scope."""
    with strategy.scope():
        model = architectures.build(cfg.arch, input_shape, classes,  # type: ignore[arg-type]
                                    dropout=cfg.dropout)
        model.compile(
            optimizer=make_optimizer(cfg, steps, strategy.num_replicas_in_sync),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
        )
    return model


def fit(cfg: TrainConfig, ds: Dataset, task: distribute.Task, backup: Backup,
        strategy_name: str, strategy: tf.distribute.Strategy) -> tuple[keras.Model, Run]:
    """Build, compile and fit the model (resuming from ``backup`` when it holds one)."""
    k = len(ds.class_names)
    input_shape = tuple(int(d) for d in ds.x_train.shape[1:])
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas
    (x_tr, y_tr), val = split(cfg, ds)
    if cfg.extra_data is not None and ds.stream is None:  # exported captures, mixed in
        extra = load_idx_dir(cfg.dataset, cfg.extra_data)
        x_tr, y_tr = np.concatenate([x_tr, extra.x_train]), np.concatenate([y_tr,
                                                                             extra.y_train])
    train_data, pictures = training_data(cfg, ds, x_tr, y_tr, k, global_batch)
    model = compile_model(cfg, input_shape, k, cfg.epochs * -(-pictures // global_batch),
                          strategy)
    if cfg.init_from is not None:
        with strategy.scope():
            model.set_weights(rebuild(cfg.models_dir / cfg.init_from).get_weights())
    if task.is_chief:
        model.summary(print_fn=lambda line, **_: print(line, flush=True))

    resumed_at = backup.resumed_at_epoch  # (read before fitting writes new backups)
    if resumed_at:
        print(f"Resuming from the backup in {backup.dir}: {resumed_at} of {cfg.epochs} "
              "epochs done", flush=True)
    callbacks: list[keras.callbacks.Callback] = backup.callbacks()
    stopper = StopAtAccuracy(cfg.stop_at_accuracy) if cfg.stop_at_accuracy is not None else None
    if stopper:
        callbacks.insert(0, stopper)
    started = time.monotonic()
    model.fit(
        train_data,
        validation_data=(pipeline(*val, cfg, k, training=False, batch_size=global_batch)
                         if val else None),
        epochs=cfg.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline already shuffles
        verbose=(1 if sys.stdout.isatty() else 2) if task.is_chief else 0,
    )
    history = backup.history()
    history.pop("learning_rate", None)
    return model, Run(strategy_name, replicas, task.workers, global_batch, history,
                      time.monotonic() - started, resumed_at,
                      stopper.stopped_epoch if stopper else None)


def publish(cfg: TrainConfig, ds: Dataset, model: keras.Model, run: Run,
            device: str) -> TrainResult:
    """Export, evaluate, describe and report the model, then publish it as the next
    version, atomically (nothing half-written is ever left behind)."""
    model_dir = cfg.models_dir / cfg.model_name
    staged = export.staging_dir(model_dir)
    try:
        fitted = trust.fit_for(model, ds, cfg.validation)
        export.write_saved_model(model, staged, fitted)
        ev = evaluate_saved_model(staged, ds.x_test, ds.y_test, ds.class_names)
        metadata = {**describe_model(cfg, ds, model), **describe_run(cfg, run), **ev.to_json(),
                    **fitted.to_json(), **learned_from(cfg, staged, ds),
                    **onnx_export.write(staged, ds.x_test), **environment(device)}
        (staged / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        write_reports(model, staged, ds, run.history, ev.confusion_matrix, ev.predictions)
        version, final = export.publish(staged, model_dir)
    except BaseException:
        export.discard(staged)
        raise
    return TrainResult(version=version, path=final, metadata=metadata)


def learned_from(cfg: TrainConfig, version_dir: Path, ds: Dataset) -> dict[str, Any]:
    """What a fine-tuned version started from and learned from: the version, the captures
    (counts, date range) and its accuracy on the captures held out from it."""
    if cfg.init_from is None and cfg.extra_data is None:
        return {}
    out: dict[str, Any] = {"init_from": cfg.init_from}
    if cfg.extra_data is not None:
        if ds.stream is not None:
            files, x_test, y_test = folder.extra(cfg.extra_data, ds)
            trained = len(files)
        else:
            extra = load_idx_dir(cfg.dataset, cfg.extra_data)
            trained, x_test, y_test = len(extra.x_train), extra.x_test, extra.y_test
        held = evaluate_saved_model(version_dir, x_test, y_test, ds.class_names)
        out["extra_data"] = {**captures.read_summary(cfg.extra_data),
                             "train_images": trained,
                             "held_out_images": len(x_test),
                             "held_out_accuracy": held.accuracy}
    return {"learned_from": out}


def describe_model(cfg: TrainConfig, ds: Dataset, model: keras.Model) -> dict[str, Any]:
    """What the service reads to serve the version (``model_card``) of a trained model."""
    return model_card(cfg.model_name, cfg.dataset, cfg.arch,
                      architectures.DESCRIPTIONS[cfg.arch], ds, model)


def model_card(name: str, dataset: str, arch: str, arch_description: str, ds: Dataset,
               model: keras.Model) -> dict[str, Any]:
    """What the service reads to serve a version of ``model``: data, classes, input,
    architecture, signatures and how uploads are prepared."""
    return {
        "name": name,
        "dataset": dataset,
        "class_names": ds.class_names,
        "input_shape": [int(d) for d in model.input_shape[1:]],
        "input_dtype": "uint8",
        "arch": arch,
        "arch_description": arch_description,
        "total_params": int(model.count_params()),
        "layers": layer_table(model),
        "signatures": export.signature_names(model),
        **upload(ds),
    }


def upload(ds: Dataset) -> dict[str, Any]:
    """How the service prepares an upload for a folder's model: as it is (no inversion to
    light-on-black, no digit centering), resized to the input like the training pictures;
    and the folder's split sizes. (The built-in datasets keep the service's defaults.)"""
    if ds.stream is None:
        return {}
    return {"upload": {"invert": "off", "center": False, "resize": "stretch"},
            "data": {"train": len(ds.stream), "test": len(ds.x_test)}}


def describe_run(cfg: TrainConfig, run: Run) -> dict[str, Any]:
    """How it was trained: settings, distribution, augmentation, history, time."""
    return {
        "hyperparameters": cfg.to_json(),
        "distribution": {"strategy": run.strategy, "replicas": run.replicas,
                         "workers": run.workers, "global_batch_size": run.global_batch},
        "augmentation": augmentation(cfg),
        "history": run.history,
        "epochs_run": len(run.history.get("loss", [])),
        "resumed_at_epoch": run.resumed_at_epoch or None,
        "stopped_early_at_epoch": run.stopped_early_at_epoch,
        "training_seconds": round(run.seconds, 1),
    }


def augmentation(cfg: TrainConfig) -> list[dict[str, Any]]:
    """The augmentation layers and their settings (none when off), and the share of
    pictures swapped for their copies as sent."""
    keep = ("height_factor", "width_factor", "factor", "mode")
    layers = [{"layer": type(layer).__name__,
               **{k: v for k, v in layer.get_config().items() if k in keep}}
              for layer in augmenter(cfg.dataset, cfg.seed).layers] if cfg.augment else []
    sent_copies = ([{"layer": "as sent (training.sent, one copy per picture)",
                     "share": cfg.as_sent}] if cfg.as_sent > 0 else [])
    return [*sent_copies, *layers]


def environment(device: str) -> dict[str, Any]:
    """Where and with what it was trained."""
    return {
        "device": device,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "source_commit": source_commit(),
    }


def write_reports(model: keras.Model, version_dir: Path, ds: Dataset,
                  history: dict[str, list[float]], cm: list[list[int]],
                  predicted: np.ndarray) -> None:
    out = version_dir / "reports"
    out.mkdir(exist_ok=True)
    if history:  # (an imported model has no training history here)
        reports.training_curves(history, out / "training_curves.png")
    reports.confusion_matrix(cm, ds.class_names, out / "confusion_matrix.png")
    convs = architectures.conv_layers(model)
    if convs:
        kernel = convs[0].kernel.numpy()
        reports.filters_grid(kernel, out / "filters.png", f"{convs[0].name} {kernel.shape}")
    reports.misclassified(ds.x_test, ds.y_test, predicted, ds.class_names,
                          out / "misclassified.png")
    reports.feature_maps(version_dir, ds.x_test[0], out)
