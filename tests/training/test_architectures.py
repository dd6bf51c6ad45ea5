from __future__ import annotations

import numpy as np
import pytest

from training import architectures

# Parameter counts the tutorials print in model.summary().
PUBLISHED_PARAMS = {"mlp20": 16_330, "fashion_cnn": 243_786, "keras_mnist_cnn": 1_199_882}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_the_tutorials(name: str) -> None:
    assert architectures.build(name).count_params() == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", architectures.names())
def test_every_architecture_builds_and_trains_a_few_steps(name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 32)
    model = architectures.build(name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert model.predict(x[:2], verbose=0).shape == (2, 10)


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(KeyError, match="choose one of mlp20"):
        architectures.build("resnet")
