"""A Keras model built elsewhere — functional, with a branch, a 3-channel input and a
logits head followed by a softmax layer, trained here by plain ``model.fit`` — imported
with ``python -m training import`` and a folder of pictures: activations, filters,
Grad-CAM, ``:explain``, ``class_count`` and the OOD verdict all answer for it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from keras import layers

from tests.helpers import ROOT, SHAPES, Server, run_server, shape_picture, shapes_folder

PNG = {"content-type": "image/png"}


def branchy() -> keras.Model:
    """Rescaling, a stem, two branches joined, global pooling, logits, softmax."""
    inp = keras.Input((48, 48, 3), name="rgb")
    x = layers.Rescaling(1 / 255, name="scale")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="stem")(x)
    x = layers.ReLU(name="stem_relu")(x)
    a = layers.Conv2D(16, 3, padding="same", name="left")(x)
    a = layers.BatchNormalization(name="left_bn")(a)
    a = layers.ReLU(name="left_relu")(a)
    b = layers.Conv2D(16, 1, name="right")(x)
    x = layers.Concatenate(name="join")([a, b])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(3, name="logits")(x)
    return keras.Model(inp, layers.Softmax(name="softmax")(x), name="branchy")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("import")
    pictures = shapes_folder(root / "shapes", per_class=40, size=48)
    rng = np.random.default_rng(1)
    x = np.stack([cv2.cvtColor(shape_picture(SHAPES[i % 3], rng, 48), cv2.COLOR_BGR2RGB)
                  for i in range(240)]).astype(np.float32)
    y = np.arange(240) % 3
    keras.utils.set_random_seed(0)
    model = branchy()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    model.save(root / "branchy.keras")
    models = root / "models"
    done = subprocess.run(
        [sys.executable, "-m", "training", "import", str(root / "branchy.keras"), "--name",
         "branchy", "--data-dir", str(pictures), "--models-dir", str(models)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "as branchy version 1" in done.stdout
    with run_server(models, tmp_path_factory.mktemp("import-run")) as server:
        yield server, models


def test_metadata_says_what_was_imported(imported: tuple[Server, Path]) -> None:
    _, models = imported
    meta = json.loads((models / "branchy" / "1" / "metadata.json").read_text())
    assert meta["arch"] == "imported" and meta["class_names"] == list(SHAPES)
    assert meta["input_shape"] == [48, 48, 3]
    assert meta["signatures"] == ["serving_default", "activations", "gradcam", "filters"]
    assert set(meta["ood"]["layers"]) == {"stem_relu", "left_relu", "right", "penultimate"}
    assert meta["test_accuracy"] > 0.6


def test_inspection_answers_for_the_imported_model(imported: tuple[Server, Path]) -> None:
    server, _ = imported
    blob = cv2.imencode(".png", shape_picture("square", np.random.default_rng(5), 48))[1]
    with server.client() as c:
        acts = c.post("/api/models/branchy/activations", content=blob.tobytes(), headers=PNG)
        kernels = c.get("/api/models/branchy/filters")
        tiles = c.get("/api/models/branchy/filters?format=png")
        cam = c.post("/api/models/branchy/gradcam?layer=left", content=blob.tobytes(),
                     headers=PNG)
        summary = c.get("/api/models/branchy/summary").json()
    assert acts.status_code == 200, acts.text
    assert {"join", "left_relu", "right", "gap"} <= {lay["name"] for lay in acts.json()["layers"]}
    assert [k["name"] for k in kernels.json()["layers"]] == ["stem", "left", "right"]
    assert tiles.status_code == 200 and tiles.headers["content-type"] == "image/png"
    assert cam.status_code == 200 and np.array(cam.json()["heatmap"]).shape == (24, 24)
    assert summary["class_names"] == list(SHAPES)


def test_tensor_faces_explain_rank_and_judge(imported: tuple[Server, Path]) -> None:
    server, _ = imported
    rng = np.random.default_rng(9)
    square = cv2.cvtColor(shape_picture("square", rng, 48), cv2.COLOR_BGR2RGB)
    noise = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    batch = np.stack([square, noise])
    with server.client() as c:
        explained = c.post("/v1/models/branchy:explain", json={"instances": batch.tolist()})
        ranked = c.post("/v2/models/branchy/infer", json={
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": list(batch.shape),
                        "data": batch.ravel().tolist()}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 3}},
                        {"name": "in_distribution"}]})
    assert explained.status_code == 200, explained.text
    assert explained.json()["explanations"][0]["label"] in SHAPES
    assert ranked.status_code == 200, ranked.text
    out = {o["name"]: o["data"] for o in ranked.json()["outputs"]}
    assert out["probabilities"][0].split(":")[2] == "square"  # score:index:label, best first
    assert out["in_distribution"] == [True, False]  # the square in, the noise out


@pytest.mark.parametrize(("build", "needle"), [
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), layers.Flatten(),
                               layers.Dense(3, activation="softmax")]), "no Conv2D layers"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3),
                               layers.Flatten(), layers.Dense(3, activation="relu")]),
     "activation 'relu'"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(3, 3),
                               layers.GlobalAveragePooling2D()]), "must end in a Dense"),
])
def test_a_model_that_cannot_serve_is_refused_by_name(tmp_path: Path, build: object,
                                                       needle: str) -> None:
    model = build()  # type: ignore[operator]
    model.save(tmp_path / "m.keras")
    shapes_folder(tmp_path / "pics", per_class=2, size=24)
    done = subprocess.run(
        [sys.executable, "-m", "training", "import", str(tmp_path / "m.keras"), "--name", "m",
         "--data-dir", str(tmp_path / "pics"), "--models-dir", str(tmp_path / "models")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and needle in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "models" / "m").exists() or not any(
        (tmp_path / "models" / "m").iterdir())
