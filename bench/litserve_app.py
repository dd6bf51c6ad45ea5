"""The peer: LitServe serving the same SavedModel with its own dynamic batching.

Run: ``python bench/litserve_app.py MODEL_DIR PORT``. Same request body as the others.
"""

from __future__ import annotations

import base64
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import litserve as ls
import numpy as np
import tensorflow as tf

MODEL_DIR, PORT = sys.argv[1], int(sys.argv[2])


class CnnAPI(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.fn = tf.saved_model.load(MODEL_DIR).signatures["serving_default"]
        self.fn(image=tf.zeros([1, 28, 28, 1], tf.uint8))

    def decode_request(self, request: dict) -> np.ndarray:  # type: ignore[type-arg]
        data = base64.b64decode(request["instances"][0]["b64"])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert img is not None, "not an image"
        return img[..., None]

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.fn(image=tf.constant(x))["probabilities"].numpy()

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict:  # type: ignore[type-arg]
        return {"predictions": [output.tolist()]}


if __name__ == "__main__":
    server = ls.LitServer(CnnAPI(max_batch_size=64, batch_timeout=0.002), accelerator="cpu",
                          workers_per_device=1)
    server.run(port=PORT, generate_client_file=False)
