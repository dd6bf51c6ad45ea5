"""Inspection of the bundled models (mnist: the ``strided`` network) and kernel filtering,
over real HTTP."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from tests.helpers import Server, fixture_images, png
from tests.service.images.test_kernels import reference

DIGIT_LABEL, DIGIT = fixture_images("digits")[7]
PNG = {"content-type": "image/png"}


def load_npy(content: bytes) -> np.ndarray:
    return np.load(io.BytesIO(content), allow_pickle=False)


def test_summary_has_the_layer_table(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.get("/api/models/mnist/summary")
    assert r.status_code == 200
    body = r.json()
    assert body["arch"] == "strided" and body["dataset"] == "mnist"
    assert body["test_accuracy"] >= 0.996 and 0 <= body["test_ece"] < 0.01
    assert body["total_params"] == sum(row["params"] for row in body["layers"])
    conv = next(row for row in body["layers"] if row["name"] == "conv1")
    assert conv["type"] == "Conv2D" and conv["kernel_size"] == [3, 3]
    assert len(body["history"]["loss"]) == body["epochs_run"]


def test_summary_says_which_runtime_serves_and_why(bundled_server: Server) -> None:
    """``auto`` on the CPU: both runtimes timed at load; TensorFlow only if clearly the
    faster at both ends (service.serving.choice)."""
    with bundled_server.client() as c:
        body = c.get("/api/models/mnist/summary").json()
    times = body["runtime_timings_ms"]
    assert sorted(times) == ["onnxruntime", "tensorflow"]
    assert all(t["call_images"] == 64 and 0 < t["one_picture"] < t["call"]
               for t in times.values())
    onnx, tensorflow = times["onnxruntime"], times["tensorflow"]
    faster = all(tensorflow[k] <= 0.9 * onnx[k] for k in ("one_picture", "call"))
    assert body["runtime"] == ("tensorflow" if faster else "onnxruntime")


def test_activations_json_npy_png(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        all_layers = c.post("/api/models/mnist/activations", content=DIGIT, headers=PNG)
        some = c.post("/api/models/mnist/activations?layers=conv1,2&channels=0,5",
                      content=DIGIT, headers=PNG)
        npy = c.post("/api/models/mnist/activations?layers=probs&format=npy",
                     content=DIGIT, headers=PNG)
        grid = c.post("/api/models/mnist/activations?layers=conv1",
                      content=DIGIT, headers={**PNG, "accept": "image/png"})
        strip = c.post("/api/models/mnist/activations?layers=flatten&format=png"
                       "&colormap=diverging", content=DIGIT, headers=PNG)
    assert all_layers.status_code == 200
    names = [layer["name"] for layer in all_layers.json()["layers"]]
    assert names[:3] == ["rescale", "conv1", "conv1_bn"] and names[-1] == "probs"
    conv = some.json()["layers"]
    assert [(x["name"], x["shape"]) for x in conv] == [("conv1", [28, 28, 2]),
                                                      ("conv1_bn", [28, 28, 2])]
    probs = load_npy(npy.content)
    assert probs.shape == (10,) and probs.argmax() == DIGIT_LABEL
    img = cv2.imdecode(np.frombuffer(grid.content, np.uint8), cv2.IMREAD_COLOR)
    assert grid.headers["content-type"] == "image/png" and img.shape[0] > 28
    assert strip.status_code == 200


@pytest.mark.parametrize(("query", "status", "needle"), [
    ("layers=nope", 404, "'nope'"),
    ("layers=99", 422, "out of range"),
    ("layers=conv1&channels=999", 422, "channel 999"),
    ("layers=conv1&channels=a,b", 422, "integers"),
    ("format=npy", 422, "one layer"),
    ("format=png&layers=conv1,conv2", 422, "one layer"),
    ("format=bmp", 422, "format 'bmp'"),
    ("colormap=rainbow", 422, "colormap"),
])
def test_activation_limits_and_names(bundled_server: Server, query: str, status: int,
                                     needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post(f"/api/models/mnist/activations?{query}", content=DIGIT, headers=PNG)
    assert r.status_code == status and needle in r.json()["error"]


def test_learned_filters_and_applying_them(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        js = c.get("/api/models/mnist/filters").json()
        one = load_npy(c.get("/api/models/mnist/filters?layer=conv2&format=npy").content)
        grid = c.get("/api/models/mnist/filters?format=png")
        applied = c.post("/api/models/mnist/filters/apply?format=npy", content=DIGIT,
                         headers=PNG)
        deep = c.post("/api/models/mnist/filters/apply?layer=conv2", content=DIGIT,
                      headers=PNG)
    shapes = {layer["name"]: layer["shape"] for layer in js["layers"]}
    assert shapes == {"conv1": [3, 3, 1, 32], "conv2": [5, 5, 32, 32], "conv3": [3, 3, 32, 64],
                      "conv4": [3, 3, 64, 64], "conv5": [5, 5, 64, 64],
                      "conv6": [4, 4, 64, 128]}
    assert one.shape == (5, 5, 32, 32)
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    maps = load_npy(applied.content)
    k = np.asarray(js["layers"][0]["data"])[:, :, 0, 5]
    digit = cv2.imdecode(np.frombuffer(DIGIT, np.uint8), cv2.IMREAD_GRAYSCALE) / 255.0
    np.testing.assert_allclose(maps[:, :, 5], reference(digit, k, "reflect101", "correlation"),
                               atol=1e-4)
    assert deep.status_code == 422 and "32 channels" in deep.json()["error"]


def test_gradcam_json_and_png(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        js = c.post("/api/models/mnist/gradcam", content=DIGIT, headers=PNG).json()
        other = c.post("/api/models/mnist/gradcam?class_index=3&layer=conv1", content=DIGIT,
                       headers=PNG).json()
        pic = c.post("/api/models/mnist/gradcam?format=png", content=DIGIT, headers=PNG)
        bad = c.post("/api/models/mnist/gradcam?class_index=10", content=DIGIT, headers=PNG)
    assert js["class_index"] == DIGIT_LABEL and js["layer"] == "conv6"  # the last conv layer
    heat = np.asarray(js["heatmap"])
    assert heat.shape == (4, 4) and heat.max() == pytest.approx(1, abs=1e-4)
    assert other["class_index"] == 3 and np.asarray(other["heatmap"]).shape == (28, 28)
    assert pic.headers["x-class-index"] == str(DIGIT_LABEL)
    assert bad.status_code == 422 and "class_index 10" in bad.json()["error"]


def test_compare_two_models(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        same = c.post("/api/compare?a=mnist", content=DIGIT, headers=PNG).json()
        cross = c.post("/api/compare?a=mnist&b=fashion_mnist", content=DIGIT,
                       headers=PNG).json()
    assert same["same_prediction"] is True
    assert all(layer["cosine_distance"] == pytest.approx(0, abs=1e-5)
               for layer in same["layers"])
    assert cross["b"]["model"] == "fashion_mnist" and cross["layers"]


# ------------------------------------------------------------------ kernel filtering
GRAY = np.random.default_rng(3).integers(0, 256, (12, 15)).astype(np.uint8)


def test_kernel_catalogue(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        body = c.get("/api/kernels").json()
    assert body["kernels"]["laplacian4"] == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert {"sobel_top", "sobel_bottom", "sobel_left", "sobel_right", "sobel_magnitude",
            "laplacian8", "box", "gaussian", "sharpen", "emboss", "identity"} <= set(
        body["kernels"])


@pytest.mark.parametrize("border", ["valid", "zero", "replicate", "reflect", "reflect101",
                                    "wrap"])
@pytest.mark.parametrize("mode", ["correlation", "convolution"])
def test_filter_over_http_matches_reference(bundled_server: Server, border: str,
                                            mode: str) -> None:
    k = [[1, 2, 0], [-1, 3, 5], [0, -2, 4]]
    with bundled_server.client() as c:
        r = c.post("/api/filter", params={"matrix": json.dumps(k), "border": border,
                                          "mode": mode, "format": "npy"},
                   content=png(GRAY), headers=PNG)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(load_npy(r.content), reference(GRAY, np.asarray(k, float),
                                                              border, mode), atol=1e-3)
    h, w = GRAY.shape
    expected = f"{w - 2}x{h - 2}" if border == "valid" else f"{w}x{h}"
    assert r.headers["x-output-size"] == expected


def test_filter_png_json_weight_color(bundled_server: Server) -> None:
    color = np.random.default_rng(4).integers(0, 256, (10, 10, 3)).astype(np.uint8)
    with bundled_server.client() as c:
        pic = c.post("/api/filter?kernel=box&size=3&weight=2", content=png(GRAY),
                     headers=PNG)
        js = c.post("/api/filter?kernel=laplacian4&format=json&border=valid",
                    content=png(GRAY), headers=PNG).json()
        rgb = c.post("/api/filter?kernel=identity&color=rgb", content=png(color), headers=PNG)
        jpeg = c.post("/api/filter?kernel=sharpen&format=jpeg", content=png(GRAY), headers=PNG)
    assert pic.headers["x-kernel"] == json.dumps([[round(2 / 9, 6)] * 3] * 3,
                                                  separators=(",", ":"))
    got = cv2.imdecode(np.frombuffer(pic.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    want = np.clip(np.rint(reference(GRAY, np.full((3, 3), 2 / 9), "reflect101",
                                     "correlation")), 0, 255)
    assert np.abs(got.astype(int) - want).max() <= 1
    raw = reference(GRAY, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float), "valid",
                    "correlation")
    np.testing.assert_allclose(js["data"], raw, atol=1e-3)  # floats before clipping
    assert js["shape"] == [10, 13]
    back = cv2.imdecode(np.frombuffer(rgb.content, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(back, color)
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_pool_and_pipeline(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        pooled = c.post("/api/pool?op=max&size=2&format=npy", content=png(GRAY), headers=PNG)
        ops = [{"op": "filter", "kernel": "sobel_right", "border": "valid"},
               {"op": "pool", "kind": "max", "size": 2}, {"op": "resize", "width": 20,
                                                          "height": 10}]
        piped = c.post("/api/pipeline", params={"ops": json.dumps(ops)}, content=png(GRAY),
                       headers=PNG)
        too_many = c.post("/api/pipeline", params={"ops": json.dumps([{"op": "grayscale"}] * 11)},
                          content=png(GRAY), headers=PNG)
    assert load_npy(pooled.content).shape == (6, 7)
    assert pooled.headers["x-output-size"] == "7x6"
    assert piped.status_code == 200 and piped.headers["x-output-size"] == "20x10"
    assert too_many.status_code == 422 and "limit is 10" in too_many.json()["error"]


@pytest.mark.parametrize(("query", "status", "needle"), [
    ({"kernel": "blur"}, 404, "'blur'"),
    ({}, 422, "exactly one"),
    ({"matrix": "[[1,2],[3,4]]"}, 422, "odd"),
    ({"matrix": "[[NaN]]"}, 422, "NaN"),
    ({"matrix": "not json"}, 422, "JSON"),
    ({"kernel": "box", "size": "4"}, 422, "odd"),
    ({"kernel": "gaussian", "sigma": "-1"}, 422, "sigma"),
    ({"kernel": "identity", "border": "mirror"}, 422, "border"),
    ({"kernel": "identity", "format": "gif"}, 422, "format"),
    ({"matrix": json.dumps(np.ones((15, 15)).tolist()), "border": "valid"}, 422,
     "smaller than"),
])
def test_filter_bad_input(bundled_server: Server, query: dict[str, str], status: int,
                          needle: str) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/filter", params=query, content=png(GRAY), headers=PNG)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


# ------------------------------------------------------------------ documented, now checked
COLOR = np.random.default_rng(5).integers(0, 256, (9, 11, 3)).astype(np.uint8)  # BGR


@pytest.mark.parametrize("route", ["/api/filter?kernel=identity", "/api/pool?size=1"])
@pytest.mark.parametrize("fmt", ["npy", "json"])
def test_colour_arrays_come_in_rgb_order(bundled_server: Server, route: str, fmt: str) -> None:
    with bundled_server.client() as c:
        r = c.post(f"{route}&color=rgb&format={fmt}", content=png(COLOR), headers=PNG)
    assert r.status_code == 200, r.text
    values = load_npy(r.content) if fmt == "npy" else np.array(r.json()["data"])
    np.testing.assert_allclose(values, COLOR[:, :, ::-1], atol=1e-3)  # png() wrote BGR


@pytest.mark.parametrize("name", ["sobel_top", "sobel_bottom", "sobel_left", "emboss"])
def test_named_kernels_match_the_reference(bundled_server: Server, name: str) -> None:
    with bundled_server.client() as c:
        kernel = np.array(c.get("/api/kernels").json()["kernels"][name], float)
        r = c.post(f"/api/filter?kernel={name}&format=npy", content=png(GRAY), headers=PNG)
    assert json.loads(r.headers["x-kernel"]) == kernel.tolist()
    np.testing.assert_allclose(load_npy(r.content), reference(GRAY, kernel, "reflect101",
                                                              "correlation"), atol=1e-3)


def test_sobel_magnitude_says_what_it_applied(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/filter?kernel=sobel_magnitude&format=npy", content=png(GRAY),
                   headers=PNG)
        kernels = c.get("/api/kernels").json()["kernels"]
    gx, gy = (np.array(kernels[k], float) for k in ("sobel_right", "sobel_bottom"))
    assert json.loads(r.headers["x-kernel"]) == {"magnitude_of": [gx.tolist(), gy.tolist()]}
    want = np.hypot(reference(GRAY, gx, "reflect101", "correlation"),
                    reference(GRAY, gy, "reflect101", "correlation"))
    np.testing.assert_allclose(load_npy(r.content), want, atol=1e-3)


@pytest.mark.parametrize("output", ["abs", "normalize"])
def test_output_modes(bundled_server: Server, output: str) -> None:
    k = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    with bundled_server.client() as c:
        r = c.post(f"/api/filter?kernel=laplacian4&output={output}", content=png(GRAY),
                   headers=PNG)
    got = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE).astype(int)
    raw = reference(GRAY, k, "reflect101", "correlation")
    want = np.abs(raw) if output == "abs" else (raw - raw.min()) * 255 / (raw.max() - raw.min())
    assert np.abs(got - np.clip(want, 0, 255)).max() <= 1


@pytest.mark.parametrize(("accept", "media"), [
    ("image/webp", "image/webp"),
    ("image/jpeg;q=0.5, image/webp;q=0.9", "image/webp"),
    ("image/webp;q=0, image/jpeg", "image/jpeg"),
    ("application/x-npy", "application/x-npy"),
    ("text/html, */*", "image/png"),
])
def test_accept_picks_the_format(bundled_server: Server, accept: str, media: str) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/filter?kernel=identity", content=png(GRAY),
                   headers={**PNG, "accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == media
    if media == "image/webp":
        decoded = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert decoded.shape == GRAY.shape


def test_activations_npz_by_accept(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/models/mnist/activations", content=DIGIT,
                   headers={**PNG, "accept": "application/x-npz"})
    assert r.headers["content-type"] == "application/x-npz"
    assert "conv1" in np.load(io.BytesIO(r.content))


def test_applying_learned_filters_takes_one_picture(bundled_server: Server) -> None:
    with bundled_server.client() as c:
        r = c.post("/api/models/mnist/filters/apply", files=[
            ("file", ("a.png", DIGIT, "image/png")), ("file", ("b.png", DIGIT, "image/png"))])
    assert r.status_code == 422 and "send one image, got 2" in r.json()["error"]


def test_compare_preprocesses_each_side_for_its_own_model(bundled_server: Server) -> None:
    """The clothing side gets no digit centering: its answer is what a plain prediction
    with that model gives."""
    with bundled_server.client() as c:
        cross = c.post("/api/compare?a=mnist&b=fashion_mnist", content=DIGIT,
                       headers=PNG).json()
        alone = c.post("/api/models/fashion_mnist/predict", content=DIGIT,
                       headers=PNG).json()["predictions"][0]
        centred = c.post("/api/models/fashion_mnist/predict?center=true", content=DIGIT,
                         headers=PNG).json()["predictions"][0]
    assert not np.allclose(alone["probabilities"], centred["probabilities"])
    np.testing.assert_allclose(cross["b"]["probabilities"], alone["probabilities"], rtol=1e-5)
