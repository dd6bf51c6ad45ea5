"""Training configuration: one commented object, resolved and saved with every model.

Defaults per architecture are the tutorials' own hyperparameters, so
``python -m training train mnist --arch keras_mnist_cnn`` reproduces tutorial 002 as
published; any flag given on the command line overrides them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adadelta")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"            # mnist | fashion_mnist | folder (data_dir's pictures)
    arch: str = "best"                # an architectures.names() entry
    epochs: int = 5
    # Per replica (per GPU or worker): the global batch is batch_size x replicas, and the
    # learning rate is multiplied by the replicas too (the linear scaling rule).
    batch_size: int = 32              # Keras's default when a tutorial gives none
    optimizer: str = "adam"           # adam | sgd | rmsprop | adadelta
    learning_rate: float | None = None  # None: the optimizer's Keras default
    lr_schedule: str = "constant"     # constant | cosine (cosine decay over all steps)
    # Validation: "0.33" holds out that fraction of the training set (Keras's
    # validation_split: the last rows), "5000" that many of its last rows, "test" uses the
    # test set as validation data (tutorial 002), "none" skips it. The held-out rows also
    # fit the temperature and the OOD threshold (training.trust), so the test set is read
    # once, for the published figures.
    validation: str = "test"
    label_smoothing: float = 0.0
    dropout: float | None = None      # every Dropout layer's rate; None: the arch's own
    augment: bool = False             # random shifts/rotations/zoom (flips for clothing)
    # Share of the training pictures that, each epoch, are swapped for a copy as a user
    # would send it (training.sent: blown up, blurred, on grey paper, marker or pen...).
    as_sent: float = 0.0
    stop_at_accuracy: float | None = None  # stop once an epoch's train accuracy exceeds it
    seed: int = 42
    data_dir: Path | None = None      # folder of the four IDX .gz files; None: Keras download
    # A folder dataset's input: height x width and channels (None: from its pictures)
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    models_dir: Path = Path("models")
    name: str | None = None           # model name in the repository; default: the dataset
    strategy: str = "auto"            # auto | one | mirrored | multi-worker (training.distribute)
    resume: bool = True               # resume from this run's backup (training.checkpoints)
    checkpoint_dir: Path | None = None  # None: <models_dir>/<name>/.checkpoints
    # Fine-tuning: start from a published version's weights ("NAME/VERSION"; its
    # architecture), and mix a folder of extra IDX data (exported captures) into the
    # training set; its test split is measured on its own (training.captures).
    init_from: str | None = None
    extra_data: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.name or self.dataset

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir) if self.data_dir else None
        d["models_dir"] = str(self.models_dir)
        d["checkpoint_dir"] = str(self.checkpoint_dir) if self.checkpoint_dir else None
        d["extra_data"] = str(self.extra_data) if self.extra_data else None
        return d


# The tutorials' hyperparameters, as each tutorial notebook sets them.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    # 000: adam, batch 128, 100 epochs, validation_split=0.33
    "mlp20": {"epochs": 100, "batch_size": 128, "validation": "0.33"},
    # 003: adam, 5 epochs, no validation (we watch the test set; it does not steer training)
    "dense128": {"epochs": 5, "batch_size": 32, "validation": "test"},
    # 000: adam, 5 epochs, batch 64, validation_split=0.33
    "cnn1": {"epochs": 5, "batch_size": 64, "validation": "0.33"},
    "cnn2": {"epochs": 5, "batch_size": 64, "validation": "0.33"},
    # 001: adam, "fewer than 20 epochs", stop above 99.8 % training accuracy
    "conv1": {"epochs": 20, "batch_size": 32, "validation": "test"},
    # 003/004: adam, 5 epochs
    "fashion_cnn": {"epochs": 5, "batch_size": 32, "validation": "test"},
    # 002: SGD(0.01), batch 128, 10 epochs, validation_data=(x_test, y_test)
    "keras_mnist_cnn": {"epochs": 10, "batch_size": 128, "optimizer": "sgd",
                        "learning_rate": 0.01, "validation": "test"},
    # ours: sized to train in under 30 minutes on a 2-core CPU
    "best": {"epochs": 15, "batch_size": 256, "learning_rate": 2e-3, "lr_schedule": "cosine",
             "augment": True, "label_smoothing": 0.1, "validation": "5000"},
    # ours: the most accurate network that trains in 45 minutes on a 2-core CPU
    "strided": {"epochs": 30, "batch_size": 128, "learning_rate": 2e-3,
                "lr_schedule": "cosine", "augment": True, "label_smoothing": 0.0,
                "validation": "5000", "as_sent": 0.25},
}


def validation_cut(rows: int, validation: str) -> int:
    """Where ``validation`` cuts a training set of ``rows``: rows before the cut train,
    the rest validate ("0.1": the last tenth, "5000": the last 5000; "test"/"none": no
    cut). Raises ``ValueError`` for anything else."""
    if validation in ("test", "none"):
        return rows
    try:
        amount = float(validation)
    except ValueError:
        amount = -1.0
    if 0.0 < amount < 1.0:
        return int(rows * (1 - amount))  # Keras's validation_split: the last rows
    if amount >= 1.0 and amount.is_integer() and amount < rows:
        return rows - int(amount)
    raise ValueError(f"validation split must be a fraction in (0, 1), a number of images "
                     f"below {rows}, 'test' or 'none', not {validation!r}")


def resolve(dataset: str, arch: str, overrides: dict[str, Any]) -> TrainConfig:
    """Config = dataclass defaults < the architecture's tutorial defaults < CLI flags."""
    base = replace(TrainConfig(dataset=dataset, arch=arch), **ARCH_DEFAULTS.get(arch, {}))
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given)
