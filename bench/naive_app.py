"""The naive baseline: what the tutorials do, behind FastAPI — ``model.predict`` per request.

Run: ``python bench/naive_app.py MODEL_DIR PORT``. Takes the TF-Serving-style body
``{"instances": [{"b64": "<png>"}]}`` like the other servers in the benchmark.
"""

from __future__ import annotations

import base64
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import keras
import numpy as np
import uvicorn
from fastapi import FastAPI

model_dir, port = sys.argv[1], int(sys.argv[2])
model = keras.Sequential([keras.Input((28, 28, 1), dtype="uint8"),
                          keras.layers.TFSMLayer(model_dir, call_endpoint="serving_default")])
app = FastAPI()


@app.post("/predict")
def predict(body: dict) -> dict:  # type: ignore[type-arg]
    images: list[np.ndarray] = []
    for instance in body["instances"]:
        img = cv2.imdecode(np.frombuffer(base64.b64decode(instance["b64"]), np.uint8),
                           cv2.IMREAD_GRAYSCALE)
        assert img is not None, "not an image"
        images.append(img)
    probs = model.predict(np.stack(images)[..., None], verbose=0)["probabilities"]
    return {"predictions": probs.tolist()}


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
