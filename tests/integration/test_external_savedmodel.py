"""A SavedModel exported elsewhere (plain tf.saved_model.save, only serving_default, no
metadata.json, float input) still serves predictions; inspection answers a clear 4xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import Server, png, run_server


class Brightness(tf.Module):
    """Class = how bright the image is (3 classes), from float pixels 0..255."""

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 1], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        mean = tf.reduce_mean(x, axis=[1, 2, 3]) / 255.0
        logits = tf.stack([-(mean - c) ** 2 * 50 for c in (0.0, 0.5, 1.0)], axis=1)
        return {"scores": tf.nn.softmax(logits)}


class Redness(tf.Module):
    """A colour model: class 1 when the red channel outweighs the others."""

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.uint8, name="rgb")])
    def serve(self, rgb: tf.Tensor) -> dict[str, tf.Tensor]:
        mean = tf.reduce_mean(tf.cast(rgb, tf.float32), axis=[1, 2])
        red = tf.cast(mean[:, 0] > (mean[:, 1] + mean[:, 2]) / 2, tf.float32)
        return {"scores": tf.stack([1 - red, red], axis=1)}


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("external")
    module = Brightness()
    tf.saved_model.save(module, str(root / "bright" / "1"),
                        signatures={"serving_default": module.serve})
    colour = Redness()
    tf.saved_model.save(colour, str(root / "red" / "1"),
                        signatures={"serving_default": colour.serve})
    with run_server(root, tmp_path_factory.mktemp("ext-logs")) as server:
        yield server


def test_predicts_without_metadata(external: Server) -> None:
    with external.client() as c:
        r = c.post("/api/models/bright/predict?invert=off", content=png(np.full((40, 40), 204,
                                                                                 np.uint8)),
                   headers={"content-type": "image/png"})
        v2 = c.get("/v2/models/bright").json()
        tfs = c.post("/v1/models/bright:predict",
                     json={"instances": np.zeros((2, 16, 16, 1)).tolist()})
    assert r.status_code == 200
    top = r.json()["predictions"][0]["top_k"][0]
    # the model's own maths for an all-204 picture: softmax of -(mean - c)^2 * 50
    logits = np.array([-(204 / 255 - c) ** 2 * 50 for c in (0.0, 0.5, 1.0)])
    expected = np.exp(logits) / np.exp(logits).sum()
    assert top == {"class_index": 2, "label": "2",
                   "probability": pytest.approx(float(expected[2]), rel=1e-5)}
    assert v2["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16, 16, 1]}]
    assert np.argmax(tfs.json()["predictions"], 1).tolist() == [0, 0]


@pytest.mark.parametrize(("method", "path", "missing"), [
    ("post", "/api/models/bright/activations", "'activations'"),
    ("post", "/api/models/bright/gradcam", "'gradcam'"),
    ("get", "/api/models/bright/filters", "'filters'"),
    ("post", "/api/models/bright/filters/apply", "'filters'"),
])
def test_inspection_names_the_missing_signature(external: Server, method: str, path: str,
                                                missing: str) -> None:
    with external.client() as c:
        r = getattr(c, method)(path, **({"content": png(np.zeros((16, 16), np.uint8)),
                                         "headers": {"content-type": "image/png"}}
                                        if method == "post" else {}))
        summary = c.get("/api/models/bright/summary")
    assert r.status_code == 422, r.text
    assert missing in r.json()["error"] and "serving_default" in r.json()["error"]
    assert summary.status_code == 200 and summary.json()["layers"] == []


def test_a_colour_model_takes_tensors_and_pictures_in_colour(external: Server) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    red_picture = png(red[..., ::-1].copy())  # (OpenCV writes BGR)
    grey_picture = png(np.full((8, 8), 200, np.uint8))
    with external.client() as c:
        tensors = c.post("/v1/models/red:predict",
                         json={"instances": [red.tolist(), np.zeros_like(red).tolist()]})
        pictures = c.post("/v1/models/red:predict", json={"instances": [
            {"b64": base64.b64encode(p).decode()} for p in (red_picture, grey_picture)]})
        upload = c.post("/api/models/red/predict", content=red_picture,
                        headers={"content-type": "image/png"})
    assert tensors.status_code == 200, tensors.text
    assert np.argmax(tensors.json()["predictions"], 1).tolist() == [1, 0]
    assert pictures.status_code == 200, pictures.text
    assert np.argmax(pictures.json()["predictions"], 1).tolist() == [1, 0]
    assert upload.json()["predictions"][0]["top_k"][0]["label"] == "1"
