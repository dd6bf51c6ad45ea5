"""How well the served OOD score tells pictures a model was trained on from others.

Starts the service on the bundled models and uploads PNGs to ``/api/models/{name}/predict``
(64 to a request, preprocessed as any upload is). For each model, in-distribution is its
own test set; out-of-distribution is the other dataset's test set, uniform noise, and
random crops of a real photograph (matplotlib's sample portrait of Grace Hopper). Prints,
per set, the AUROC of ``ood_score`` and the false-positive rate at 95 % true-positive rate
(the threshold that keeps 95 % of this run's in-distribution uploads), the share the
version's own threshold accepts (``in_distribution``), and the accuracy of the uploads.

Then pictures from elsewhere (``bench/data/elsewhere``, written by ``bench/elsewhere.py``
and never fitted on): each model's own kind of picture as users send them (dark ink on
paper, other resolutions, blur, marker and pen, rotation, off-centre, JPEG, textured
paper, rendered fonts), where the share the verdict flags as not in distribution should
be small, per kind of change; and rendered letters and symbols, which should be flagged.

``--compare`` also measures, in-process on pictures prepared as uploads are, the designs
the served score was chosen over (``compare``).

    python bench/ood.py --data-dir DIR [--count 2000] [--compare]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port, server, service_env
from cnnlab.centering import centres_uploads
from service.images.preprocess import PreprocessSpec, prepare, stack
from training import data, trust

PAIRS = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}
ELSEWHERE = Path(__file__).resolve().parent / "data" / "elsewhere"
PER_REQUEST = 64


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def photo_crops(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` square grey crops, 28 to 200 px a side, of a real photograph."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if photo is None:
        raise SystemExit(f"cannot read the sample photograph {path}")
    crops = []
    for _ in range(n):
        side = int(rng.integers(28, min(photo.shape) // 2))
        y, x = (int(rng.integers(0, d - side)) for d in photo.shape)
        crops.append(photo[y:y + side, x:x + side])
    return crops


def upload(client: httpx.Client, url: str, model: str, pictures: list[np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OOD scores, in_distribution flags and predicted classes of ``pictures`` as PNGs."""
    scores, inside, classes = [], [], []
    for i in range(0, len(pictures), PER_REQUEST):
        files = [("file", (f"{j}.png", cv2.imencode(".png", p)[1].tobytes(), "image/png"))
                 for j, p in enumerate(pictures[i:i + PER_REQUEST])]
        r = client.post(f"{url}/api/models/{model}/predict", files=files, params={"top_k": 1})
        r.raise_for_status()
        for p in r.json()["predictions"]:
            scores.append(p["ood_score"])
            inside.append(p["in_distribution"])
            classes.append(p["top_k"][0]["class_index"])
    return np.array(scores), np.array(inside), np.array(classes)


def served(url: str, datasets: dict[str, data.Dataset], count: int) -> None:
    rng = np.random.default_rng(0)
    with httpx.Client(timeout=120) as client:
        for model, other in PAIRS.items():
            own = datasets[model]
            version = client.get(f"{url}/api/models/{model}").json()["versions"][-1]["version"]
            inside, accepted, predicted = upload(client, url, model, list(own.x_test[:count]))
            accuracy = float(np.mean(predicted == own.y_test[:count]))
            print(f"\n{model} version {version}: {count} {model} test uploads, accuracy "
                  f"{accuracy:.4f}, {accepted.mean():.1%} in distribution")
            print(f"  {'out-of-distribution set':<28}{'AUROC':>8}{'FPR@95':>9}"
                  f"{'accepted':>10}")
            sets = {f"{other} test": list(datasets[other].x_test[:count]),
                    "uniform noise": list(noise(count // 4, rng)),
                    "photo crops": photo_crops(count // 4, rng)}
            for name, pictures in sets.items():
                outside, taken, _ = upload(client, url, model, pictures)
                print(f"  {name:<28}{trust.auroc(inside, outside):>8.4f}"
                      f"{trust.fpr_at(inside, outside):>9.2%}{taken.mean():>10.2%}")


def from_elsewhere(folder: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The pictures of one folder of the set, their classes and how each was made."""
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"no pictures in {folder}: run bench/elsewhere.py first")
    pictures = []
    for file in files:
        picture = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        if picture is None:
            raise SystemExit(f"cannot read {file}")
        pictures.append(picture)
    labels = np.array([int(f.name.split("_")[0]) for f in files])
    return pictures, labels, [f.name.split("_")[1] for f in files]


def elsewhere(url: str, datasets: dict[str, data.Dataset], count: int) -> None:
    """Each model's own kind of picture from elsewhere (flagged: should be few), and
    rendered letters and symbols (AUROC against the model's own test uploads)."""
    symbols, _, _ = from_elsewhere(ELSEWHERE / "symbols")
    with httpx.Client(timeout=120) as client:
        for model in PAIRS:
            pictures, labels, how = from_elsewhere(ELSEWHERE / model)
            _, accepted, predicted = upload(client, url, model, pictures)
            print(f"\n{model}: {len(pictures)} pictures from elsewhere, accuracy "
                  f"{np.mean(predicted == labels):.4f}, flagged not in distribution "
                  f"{1 - accepted.mean():.1%}")
            kinds = np.array(how)
            for kind in sorted(set(how)):
                mine = kinds == kind
                print(f"  {kind:<12} {mine.sum():>4} pictures: accuracy "
                      f"{np.mean(predicted[mine] == labels[mine]):.3f}, flagged "
                      f"{1 - accepted[mine].mean():6.1%}")
            inside, _, _ = upload(client, url, model, list(datasets[model].x_test[:count]))
            outside, taken, _ = upload(client, url, model, symbols)
            print(f"  letters and symbols ({len(symbols)}) against {count} test uploads: "
                  f"AUROC {trust.auroc(inside, outside):.4f}, FPR@95 "
                  f"{trust.fpr_at(inside, outside):.2%}, accepted {taken.mean():.2%}")


def as_uploads(pictures: np.ndarray, model: str) -> np.ndarray:
    """``pictures`` ``[N,28,28,1]`` as the service prepares uploads for ``model``."""
    spec = PreprocessSpec(28, 28, "auto", center=centres_uploads(model))
    return stack(prepare(list(pictures[..., 0]), spec))


def compare(models_dir: Path, datasets: dict[str, data.Dataset]) -> None:
    """In-process, for each bundled model: the served design against the others measured
    for it, each with a threshold accepting 95 % of the validation split's pictures and
    their copies as sent: the feature ensemble with its threshold set on the pictures as
    stored and uploaded only, the Mahalanobis distance at the penultimate layer alone, the
    energy score and the maximum softmax probability. Columns: the share of pictures from
    elsewhere flagged, and the AUROC against the other dataset's uploads and against
    rendered letters and symbols (inside: the model's own test uploads)."""
    from cnnlab.layout import METADATA_FILE, list_versions
    from training.config import validation_cut
    from training.reexport import rebuild

    symbols, _, _ = from_elsewhere(ELSEWHERE / "symbols")
    print("\nin-process, designs of the score (thresholds fitted on the validation split):")
    print(f"  {'model':<16}{'score':<44}{'flagged':>9}{'AUROC other':>13}"
          f"{'AUROC symbols':>15}")
    for model, other in PAIRS.items():
        version = list_versions(models_dir / model)[-1]
        version_dir = models_dir / model / str(version)
        validation = str(json.loads((version_dir / METADATA_FILE).read_text()).get(
            "hyperparameters", {}).get("validation", "test"))
        keras_model = rebuild(version_dir)
        own = datasets[model]
        cut = validation_cut(len(own.x_train), validation)
        held = trust.as_users_see(own.x_train[cut:], own.y_train[cut:], model,
                                  np.random.default_rng(1)).x
        pictures, _, _ = from_elsewhere(ELSEWHERE / model)
        sets = {"inside": as_uploads(own.x_test[:2000], model),
                "elsewhere": as_uploads_of(pictures, model),
                "other": as_uploads(datasets[other].x_test[:2000], model),
                "symbols": as_uploads_of(symbols, model), "held": held}
        designs: dict[str, dict[str, np.ndarray]] = {}
        for sent_copies in (True, False):
            fitted = trust.fit_for(keras_model, own, validation, sent_copies=sent_copies)
            served = sent_copies == centres_uploads(model)  # (training.trust.fit_for)
            name = ("feature ensemble, threshold with copies as sent" if sent_copies
                    else "feature ensemble, threshold on pictures as stored") + (
                        " (served)" if served else "")
            designs[name] = {k: trust.ood_scores(fitted, keras_model, x)
                             for k, x in sets.items()}
            if served and fitted.energy is not None:
                designs["feature ensemble without the energy term"] = {
                    k: trust.combined(fitted.layers, trust.layer_features(
                        keras_model, x, fitted.picture)) for k, x in sets.items()}
            if sent_copies:
                last = fitted.layers[-1]
                feats = {k: trust.penultimate_features(keras_model, x) for k, x in sets.items()}
                designs["Mahalanobis, penultimate layer alone"] = {
                    k: last.score(f) for k, f in feats.items()}
                logits = {k: trust.logits_of(keras_model, f) for k, f in feats.items()}
                designs["energy"] = {k: trust.energy(z, fitted.temperature)
                                     for k, z in logits.items()}
                designs["maximum softmax probability"] = {
                    k: -trust.softmax(z, fitted.temperature).max(axis=1)
                    for k, z in logits.items()}
        for name, scores in designs.items():
            held = scores["held"] if "as stored" not in name else scores["held"][
                trust.calibrated_rows(trust.as_users_see(
                    own.x_train[cut:], own.y_train[cut:], model, np.random.default_rng(1)))]
            threshold = np.quantile(held, trust.ACCEPT)
            print(f"  {f'{model}/{version}':<16}{name:<44}"
                  f"{np.mean(scores['elsewhere'] > threshold):>9.1%}"
                  f"{trust.auroc(scores['inside'], scores['other']):>13.4f}"
                  f"{trust.auroc(scores['inside'], scores['symbols']):>15.4f}", flush=True)


def as_uploads_of(pictures: list[np.ndarray], model: str) -> np.ndarray:
    """Grayscale pictures of any size as the service prepares uploads for ``model``."""
    spec = PreprocessSpec(28, 28, "auto", center=centres_uploads(model))
    return stack(prepare(pictures, spec))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True,
                   help="folder with the MNIST and Fashion-MNIST IDX .gz files")
    p.add_argument("--count", type=int, default=2000,
                   help="test pictures of each dataset to upload (noise and crops: a quarter)")
    p.add_argument("--compare", action="store_true",
                   help="also measure the other designs of the score in-process")
    args = p.parse_args()
    datasets = {name: data.load(name, args.data_dir) for name in PAIRS}
    port = free_port()
    with server([sys.executable, "-m", "service"], port, "/health/ready",
                env=service_env(port)) as (url, _):
        served(url, datasets, args.count)
        elsewhere(url, datasets, args.count)
    if args.compare:
        compare(Path(service_env(port)["CNNLAB_MODELS_DIR"]), datasets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
