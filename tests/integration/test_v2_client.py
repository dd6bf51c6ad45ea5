"""The V2 face with a standard, unmodified Open Inference Protocol client."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.helpers import Server, fixture_images

DIGITS = fixture_images("digits")


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infers_unchanged(bundled_server: Server, binary: bool) -> None:
    c = client(bundled_server)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("mnist")
    meta = c.get_model_metadata("mnist")
    assert meta["inputs"][0]["name"] == "image"
    batch = np.stack([cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE)
                      for _, d in DIGITS])[..., None]
    inp = triton.InferInput("image", list(batch.shape), "UINT8")
    inp.set_data_from_numpy(batch, binary_data=binary)
    out = triton.InferRequestedOutput("probabilities", binary_data=binary)
    result = c.infer("mnist", [inp], outputs=[out], request_id="r1")
    probs = result.as_numpy("probabilities")
    assert probs.shape == (10, 10)
    assert probs.argmax(1).tolist() == [label for label, _ in DIGITS]
    assert result.get_response()["id"] == "r1"


def test_tritonclient_sees_clear_errors(bundled_server: Server) -> None:
    c = client(bundled_server)
    assert not c.is_model_ready("nope")
    inp = triton.InferInput("image", [1, 28, 28, 1], "UINT8")
    inp.set_data_from_numpy(np.zeros((1, 28, 28, 1), np.uint8))
    with pytest.raises(InferenceServerException, match="model 'nope' not found"):
        c.infer("nope", [inp])
