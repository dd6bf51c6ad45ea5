"""``python -m training {train,evaluate,list}``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ chatter out of the CLI

from cnnlab.layout import METADATA_FILE, list_models, list_versions
from training import architectures, config, data, distribute


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and export a new version")
    t.add_argument("dataset", nargs="?",
                   help="mnist, fashion_mnist, or folder:PATH (one sub-folder of pictures "
                        "per class); default: the pictures in --data-dir")
    t.add_argument("--arch", choices=architectures.names(),
                   help="default: best, or with --init-from the version's own")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=config.OPTIMIZERS)
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--lr-schedule", choices=("constant", "cosine"))
    t.add_argument("--validation-split", dest="validation",
                   help="the last rows of the training set held out: a fraction (e.g. 0.33) "
                        "or a number of images (e.g. 5000); 'test' to validate on the "
                        "test set, or 'none'")
    t.add_argument("--label-smoothing", type=float)
    t.add_argument("--dropout", type=float, metavar="RATE",
                   help="every Dropout layer's rate (default: the architecture's own)")
    t.add_argument("--seed", type=int)
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--as-sent", type=float, metavar="SHARE",
                   help="share of training pictures swapped each epoch for a copy as a "
                        "user would send it (blurred, blown up, on grey paper...; 0: none)")
    t.add_argument("--stop-at-accuracy", type=float,
                   help="stop once an epoch's training accuracy exceeds this (e.g. 0.998)")
    t.add_argument("--data-dir", type=Path,
                   help="folder with the four IDX .gz files, or a folder of pictures with "
                        "one sub-folder per class")
    t.add_argument("--image-size", type=_size, metavar="HxW",
                   help="a folder's pictures are resized to this (default: their most "
                        "common size, at most 224 a side)")
    t.add_argument("--channels", type=int, choices=(1, 3),
                   help="a folder's pictures as grayscale (1) or colour (3) (default: colour "
                        "when they have colour)")
    t.add_argument("--models-dir", type=Path, default=Path("models"))
    t.add_argument("--name", help="model name in the repository (default: the dataset)")
    t.add_argument("--strategy", choices=distribute.STRATEGIES,
                   help="tf.distribute strategy: one device, every local GPU (mirrored), or "
                        "the processes TF_CONFIG lists (multi-worker); auto (default) picks")
    t.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                   help="resume the same command's run from its last finished epoch "
                        "(default) or start afresh")
    t.add_argument("--checkpoint-dir", type=Path,
                   help="where runs back up every epoch (default: "
                        "MODELS_DIR/NAME/.checkpoints)")

    t.add_argument("--init-from", metavar="NAME/VERSION",
                   help="fine-tune: start from this published version's weights")
    t.add_argument("--extra-data", type=Path, metavar="DIR",
                   help="IDX files to mix into the training set (e.g. exported captures); "
                        "their test split is measured on its own")

    e = sub.add_parser("evaluate", help="evaluate an exported version on its test set")
    e.add_argument("model", help="NAME or NAME/VERSION (default: the newest version)")
    e.add_argument("--data-dir", type=Path)
    e.add_argument("--models-dir", type=Path, default=Path("models"))
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--record", action="store_true",
                   help="write the scores (accuracy, ECE, loss, per class, confusion matrix) "
                        "into the version's metadata.json")

    r = sub.add_parser("reexport", help="write a version again with the current signatures "
                                        "(same weights) as a new version")
    r.add_argument("model", help="NAME/VERSION")
    r.add_argument("--data-dir", type=Path,
                   help="folder with the four IDX .gz files (the calibration and the OOD "
                        "score are fitted on the version's dataset)")
    r.add_argument("--models-dir", type=Path, default=Path("models"))

    i = sub.add_parser("import", help="publish a Keras image classifier trained elsewhere, "
                                      "fitted and measured on a folder of pictures")
    i.add_argument("model_file", type=Path, metavar="MODEL",
                   help="a .keras or .h5 file: pictures [N,H,W,1 or 3] in 0..255 -> conv "
                        "layers -> a Dense softmax (or logits) head")
    i.add_argument("--name", required=True, help="model name in the repository")
    i.add_argument("--data-dir", type=Path, required=True,
                   help="a folder with one sub-folder of pictures per class (its classes in "
                        "the model's order: sorted by name)")
    i.add_argument("--validation-split", dest="validation", default="0.1",
                   help="share (or number) of the training pictures that fit the "
                        "temperature and the OOD threshold (default 0.1)")
    i.add_argument("--seed", type=int, default=42)
    i.add_argument("--models-dir", type=Path, default=Path("models"))

    o = sub.add_parser("onnx", help="add model.onnx (serving_default for ONNX Runtime, "
                                    "checked against TensorFlow) to a published version")
    o.add_argument("model", help="NAME/VERSION")
    o.add_argument("--data-dir", type=Path,
                   help="the version's dataset (its test pictures are the check pictures)")
    o.add_argument("--models-dir", type=Path, default=Path("models"))

    ls = sub.add_parser("list", help="models and versions in a models directory")
    ls.add_argument("--models-dir", type=Path, default=Path("models"))

    c = sub.add_parser("captures", help="the service's captured uploads")
    csub = c.add_subparsers(dest="action", required=True)
    ce = csub.add_parser("export", help="write a model's labelled captures as IDX files, or "
                                        "a folder model's as class folders (a dataset for "
                                        "--extra-data)")
    ce.add_argument("--model", required=True)
    ce.add_argument("--labelled", action="store_true", required=True,
                    help="only pictures feedback gave a true class (required: the others "
                         "cannot be learned from)")
    ce.add_argument("--to", type=Path, required=True, metavar="DIR")
    ce.add_argument("--capture-url", default="",
                    help="the store's SQLAlchemy URL, as CNNLAB_CAPTURE_URL (default: the "
                         "SQLite file in --capture-dir)")
    ce.add_argument("--capture-dir", type=Path, default=Path("captures"),
                    help="as CNNLAB_CAPTURE_DIR")
    ce.add_argument("--models-dir", type=Path, default=Path("models"),
                    help="where the model is (a folder model's captures are written as "
                         "class folders, named by its newest version's classes)")
    return p


def _size(text: str) -> tuple[int, int]:
    """``"64x48"`` (height x width) or ``"64"`` -> (64, 48) / (64, 64)."""
    h, _, w = text.lower().partition("x")
    try:
        size = (int(h), int(w or h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HxW: {text!r}") from None
    if not all(4 <= side <= 1024 for side in size):
        raise argparse.ArgumentTypeError(f"each side must be 4..1024, not {text!r}")
    return size


def _dataset(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The dataset and its folder: ``mnist``/``fashion_mnist`` (IDX files in --data-dir,
    or Keras's download), ``folder:PATH``, or a --data-dir of class sub-folders."""
    from training import folder

    given = args.dataset
    if given in data.DATASETS:
        return given, args.data_dir
    if given is not None and not given.startswith(f"{folder.FOLDER}:"):
        raise data.DataError(f"unknown dataset {given!r}: choose {', '.join(data.DATASETS)} "
                             "or folder:PATH")
    root = Path(given.partition(":")[2]) if given else args.data_dir
    if root is None:
        raise data.DataError("name a dataset (mnist, fashion_mnist, folder:PATH) or pass "
                             "--data-dir with one sub-folder of pictures per class")
    if not folder.is_class_folder(root):
        raise data.DataError(f"{root}: not a folder with one sub-folder of pictures per class")
    return folder.FOLDER, root


def _load(cfg: config.TrainConfig) -> tuple[config.TrainConfig, data.Dataset]:
    """The run's dataset; a folder's validation split made a count of its pictures."""
    from training import folder

    if cfg.dataset != folder.FOLDER:
        return cfg, data.load(cfg.dataset, cfg.data_dir)
    assert cfg.data_dir is not None
    loaded = folder.load(cfg.data_dir, cfg.validation, cfg.image_size, cfg.channels, cfg.seed)
    ds = loaded.dataset
    if cfg.extra_data is not None:
        ds = folder.with_extra(ds, folder.extra(cfg.extra_data, ds)[0])
    assert ds.stream is not None
    cfg = replace(cfg, validation=loaded.validation,
                  image_size=(ds.stream.height, ds.stream.width), channels=ds.stream.channels)
    return cfg, ds


def _train(args: argparse.Namespace) -> int:
    from training.train import split, train

    overrides = {k: getattr(args, k) for k in (
        "epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule", "validation",
        "label_smoothing", "dropout", "seed", "augment", "as_sent", "stop_at_accuracy", "data_dir",
        "models_dir", "name", "strategy", "resume", "checkpoint_dir", "init_from", "extra_data",
        "image_size", "channels")}
    dataset, overrides["data_dir"] = _dataset(args)
    if dataset == "folder" and not args.name and overrides["data_dir"] is not None:
        overrides["name"] = overrides["data_dir"].resolve().name
    arch = args.arch or "best"
    meta: dict[str, Any] = {}
    if args.init_from:
        meta = json.loads((_version_dir(args.models_dir, args.init_from) / METADATA_FILE)
                          .read_text())
        if meta.get("dataset") != dataset:
            raise data.DataError(f"--init-from {args.init_from} was trained on "
                                 f"{meta.get('dataset')}, not {dataset}")
        arch = args.arch or meta["arch"]
        if dataset == "folder":  # the version's input, whatever the new pictures' size
            h, w, c = meta["input_shape"]
            overrides["image_size"], overrides["channels"] = (h, w), c
        overrides["init_from"] = str(_version_dir(args.models_dir, args.init_from)
                                     .relative_to(args.models_dir))
    cfg, ds = _load(config.resolve(dataset, arch, overrides))
    if cfg.init_from and meta["class_names"] != ds.class_names:
        raise data.DataError(f"--init-from {args.init_from} has classes "
                             f"{meta['class_names']}, not {ds.class_names}")
    try:
        config.validation_cut(len(ds.x_train), cfg.validation)
    except ValueError as exc:
        raise data.DataError(f"--validation-split: {exc}") from None
    if not 0.0 <= cfg.as_sent <= 1.0:
        raise data.DataError(f"--as-sent must be a share in [0, 1], not {cfg.as_sent}")
    if cfg.dropout is not None and not 0.0 <= cfg.dropout < 1.0:
        raise data.DataError(f"--dropout must be a rate in [0, 1), not {cfg.dropout}")
    (x_fit, _), held = split(cfg, ds)
    held_out = ("the test set" if cfg.validation == "test" else
                f"{len(held[0])}" if held is not None else "none")
    print(f"Training {cfg.arch} on {cfg.dataset}: {len(x_fit)} train / {held_out} validation"
          f" / {len(ds.x_test)} test images; config {json.dumps(cfg.to_json())}", flush=True)
    result = train(cfg, ds)
    if result is None:
        print("Training done; the chief publishes the version")
        return 0
    m = result.metadata
    print(f"Exported {m['name']} version {result.version} to {result.path}")
    reports = result.path / "reports"
    if reports.is_dir():
        print(f"reports ({len(list(reports.iterdir()))} files): {reports}")
    print(f"test accuracy {m['test_accuracy']:.4f}  ECE {m['test_ece']:.4f}  "
          f"test loss {m['test_loss']:.4f}  "
          f"epochs {m['epochs_run']}  {m['training_seconds']:.0f} s")
    return 0


def _version_dir(models_dir: Path, spec: str) -> Path:
    name, _, version = spec.partition("/")
    versions = list_versions(models_dir / name)
    if not versions:
        raise data.DataError(f"no versions of model {name!r} in {models_dir}")
    if version and (not version.isdigit() or int(version) not in versions):
        raise data.DataError(f"model {name!r} has no version {version!r} (has {versions})")
    return models_dir / name / (version or str(versions[-1]))


def _evaluate(args: argparse.Namespace) -> int:
    from training import folder
    from training.evaluate import evaluate_saved_model

    vdir = _version_dir(args.models_dir, args.model)
    meta = json.loads((vdir / METADATA_FILE).read_text())
    ds, _ = folder.of_version(meta, args.data_dir)
    ev = evaluate_saved_model(vdir, ds.x_test, ds.y_test, meta["class_names"])
    if args.record:  # atomically: a service loading the version reads one or the other
        staged = vdir / f".{METADATA_FILE}.tmp"
        staged.write_text(json.dumps({**meta, **ev.to_json()}, indent=2))
        staged.replace(vdir / METADATA_FILE)
    if args.json:
        print(json.dumps(ev.to_json()))
        return 0
    print(f"{vdir}: {meta['dataset']} test set, {len(ds.y_test)} images")
    print(f"test loss {ev.loss:.4f}  test accuracy {ev.accuracy:.4f}  ECE {ev.ece:.4f}")
    width = max(len(n) for n in meta["class_names"])
    for name, acc in ev.per_class_accuracy.items():
        print(f"  {name:>{width}}  {acc:.4f}")
    print("confusion matrix (rows true, columns predicted):")
    for row in ev.confusion_matrix:
        print("  " + " ".join(f"{v:5d}" for v in row))
    return 0


def _reexport(args: argparse.Namespace) -> int:
    from training.reexport import ReexportError, reexport

    vdir = _version_dir(args.models_dir, args.model)
    try:
        version, path = reexport(vdir, args.data_dir)
    except ReexportError as exc:
        raise data.DataError(str(exc)) from None
    meta = json.loads((path / METADATA_FILE).read_text())
    cal, ood = meta["calibration"], meta["ood"]
    print(f"Re-exported {vdir} as version {version} at {path}\n"
          f"test accuracy {meta['test_accuracy']:.4f}; temperature {cal['temperature']:.3f}, "
          f"ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f} on {cal['measured_on']}; "
          f"OOD threshold {ood['threshold']:.1f} accepts {ood['accepted_on_check']:.1%} of "
          f"{ood['measured_on']}")
    return 0


def _captures(args: argparse.Namespace) -> int:
    from training.captures import export

    url = args.capture_url or f"sqlite:///{args.capture_dir / 'captures.db'}"
    if not args.capture_url and not (args.capture_dir / "captures.db").is_file():
        raise data.DataError(f"no capture store at {args.capture_dir / 'captures.db'} "
                             "(pass --capture-dir or --capture-url)")
    class_names = None
    if list_versions(args.models_dir / args.model):
        meta_path = _version_dir(args.models_dir, args.model) / METADATA_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta.get("dataset") == "folder":
            class_names = meta["class_names"]
    summary = export(url, args.model, args.to, class_names=class_names)
    print(f"Exported {summary['captures']} labelled captures of {args.model} "
          f"({summary['first']} to {summary['last']}) to {args.to}: {summary['train']} to "
          f"train on, {summary['held_out']} held out")
    return 0


def _import(args: argparse.Namespace) -> int:
    from training import folder
    from training.imported import import_model

    if not folder.is_class_folder(args.data_dir):
        raise data.DataError(f"{args.data_dir}: not a folder with one sub-folder of pictures "
                             "per class")
    result = import_model(args.model_file, args.name, args.data_dir, args.models_dir,
                          args.validation, args.seed)
    m = result.metadata
    print(f"Imported {args.model_file} as {m['name']} version {result.version} at "
          f"{result.path}\ntest accuracy {m['test_accuracy']:.4f}  ECE {m['test_ece']:.4f} "
          f"on {m['test_images']} pictures")
    return 0


def _onnx(args: argparse.Namespace) -> int:
    """``model.onnx`` into a published version, in place (each file renamed into place
    whole), and the check recorded in its ``metadata.json``."""
    from training import folder, onnx_export

    vdir = _version_dir(args.models_dir, args.model)
    meta = json.loads((vdir / METADATA_FILE).read_text())
    ds, _ = folder.of_version(meta, args.data_dir)
    entry = onnx_export.write(vdir, ds.x_test)
    staged = vdir / f".{METADATA_FILE}.tmp"
    staged.write_text(json.dumps({**meta, **entry}, indent=2))
    staged.replace(vdir / METADATA_FILE)
    if "error" in entry["onnx"]:
        raise data.DataError(f"{vdir}: {entry['onnx']['error']}")
    print(f"{vdir}: wrote {entry['onnx']['file']}; ONNX Runtime agrees with TensorFlow on "
          f"{entry['onnx']['pictures']} test pictures (probabilities within "
          f"{entry['onnx']['max_probability_gap']:.1g})")
    return 0


def _list(args: argparse.Namespace) -> int:
    print(f"{'model':<16}{'version':>8}  {'dataset':<14}{'arch':<17}{'test acc':>9}  created")
    for name in list_models(args.models_dir):
        for v in list_versions(args.models_dir / name):
            meta_path = args.models_dir / name / str(v) / METADATA_FILE
            try:
                m = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                m = {}
            acc = m.get("test_accuracy")
            print(f"{name:<16}{v:>8}  {m.get('dataset', '?'):<14}{m.get('arch', '?'):<17}"
                  f"{(f'{acc:.4f}' if acc is not None else '?'):>9}  {m.get('created', '?')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # TensorFlow's own logger prints through its handler too: its notes once, warnings only
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "evaluate": _evaluate, "list": _list, "reexport": _reexport,
                "captures": _captures, "import": _import, "onnx": _onnx}
    try:
        return handlers[args.command](args)
    except (data.DataError, distribute.StrategyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no version was written", file=sys.stderr)
        return 130
