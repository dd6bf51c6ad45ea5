"""Pictures "from elsewhere": what users send, not what MNIST's scanner made. Writes the
evaluation set bench/ood.py reads (kept in the repository, never used by any fitting):

- ``mnist/``: digits of the MNIST test split as a user's picture of one would look —
  dark ink on light paper, at another resolution, blurred or sharpened, thicker (marker)
  or thinner (pen), rotated, off-centre, JPEG-compressed, on textured paper — and digits
  rendered in OpenCV's fonts. In distribution for the digit model.
- ``fashion_mnist/``: Fashion-MNIST test pictures under the same photographic changes
  (no stroke changes). In distribution for the clothing model.
- ``symbols/``: letters and symbols rendered in the same fonts and strokes. Out of
  distribution for both.

File names are ``<class index>_<how>_<n>.png`` (``-1`` for symbols).

    python bench/elsewhere.py --data-dir DIR [--count 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import string
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training import data

OUT = Path(__file__).resolve().parent / "data" / "elsewhere"
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)
SYMBOLS = string.ascii_uppercase + "abdeghkmnqrtwxy" + "+-=%&#@?!$*<>"
Change = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def on_paper(picture: np.ndarray) -> np.ndarray:
    """MNIST's light-on-black as dark ink on white paper (how a scan or photo looks)."""
    return 255 - picture


def resized(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resolution lost (down to 10-16 px) and blown up again (to 40-120 px)."""
    small = int(rng.integers(10, 17))
    big = int(rng.integers(40, 121))
    down = cv2.resize(picture, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (big, big), interpolation=cv2.INTER_LINEAR)


def blurred(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC)
    side = int(rng.choice([3, 5, 7]))
    return cv2.GaussianBlur(big, (side, side), 0)


def marker(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thicker strokes: the ink (dark) grown."""
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC)
    side = int(rng.integers(3, 6))
    return cv2.erode(big, np.ones((side, side), np.uint8))


def pen(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thinner strokes: the ink shrunk."""
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC)
    return cv2.dilate(big, np.ones((3, 3), np.uint8))


def rotated(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC)
    turn = cv2.getRotationMatrix2D((42, 42), float(rng.uniform(-20, 20)), 1.0)
    return cv2.warpAffine(big, turn, (84, 84), borderValue=255)


def off_centre(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small in a corner of a bigger sheet."""
    side = int(rng.integers(100, 160))
    sheet = np.full((side, side), 255, np.uint8)
    size = int(rng.integers(36, 60))
    y, x = (int(rng.integers(0, side - size)) for _ in range(2))
    sheet[y:y + size, x:x + size] = cv2.resize(picture, (size, size),
                                               interpolation=cv2.INTER_CUBIC)
    return sheet


def paper(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey, uneven paper with grain; the ink a dark grey, not black."""
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    shade = np.linspace(float(rng.uniform(170, 220)), float(rng.uniform(200, 245)), 84)
    background = shade[None, :] + rng.normal(0, 8, (84, 84))
    ink = float(rng.uniform(30, 90))
    mix = big / 255.0  # 1 = paper, 0 = ink
    return np.clip(mix * background + (1 - mix) * ink, 0, 255).astype(np.uint8)


def jpeg(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    big = cv2.resize(picture, (84, 84), interpolation=cv2.INTER_CUBIC)
    quality = int(rng.integers(10, 40))
    encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    assert decoded is not None, "OpenCV cannot read its own JPEG"
    return decoded


PHOTOGRAPHIC: dict[str, Change] = {"resized": resized, "blurred": blurred,
                                   "rotated": rotated, "off-centre": off_centre,
                                   "paper": paper, "jpeg": jpeg}
STROKES: dict[str, Change] = {"marker": marker, "pen": pen}


def rendered(text: str, rng: np.random.Generator) -> np.ndarray:
    """``text`` in one of OpenCV's fonts, dark on white, of a random weight."""
    font = FONTS[int(rng.integers(len(FONTS)))]
    thickness = int(rng.integers(2, 9))
    scale = 2.0 if font != cv2.FONT_HERSHEY_PLAIN else 4.0
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    side = max(w, h + base) + 24
    sheet = np.full((side, side), 255, np.uint8)
    cv2.putText(sheet, text, ((side - w) // 2, (side + h) // 2), font, scale, 0, thickness,
                cv2.LINE_AA)
    return sheet


def write(folder: Path, pictures: list[tuple[int, str, np.ndarray]]) -> None:
    folder.mkdir(parents=True)
    for n, (label, how, picture) in enumerate(pictures):
        cv2.imwrite(str(folder / f"{label}_{how}_{n}.png"), picture)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True,
                   help="folder with the MNIST and Fashion-MNIST IDX .gz files")
    p.add_argument("--count", type=int, default=200, help="pictures of each kind of change")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    shutil.rmtree(OUT, ignore_errors=True)
    for name, changes in (("mnist", {**PHOTOGRAPHIC, **STROKES}),
                          ("fashion_mnist", PHOTOGRAPHIC)):
        test = data.load(name, args.data_dir)
        chosen = rng.choice(len(test.x_test), args.count * len(changes), replace=False)
        pictures = []
        for i, index in enumerate(chosen):
            how = list(changes)[i % len(changes)]
            picture = on_paper(test.x_test[index, :, :, 0])
            pictures.append((int(test.y_test[index]), how, changes[how](picture, rng)))
        if name == "mnist":
            pictures += [(d, "font", rendered(str(d), rng))
                         for d in rng.integers(0, 10, args.count).tolist()]
        write(OUT / name, pictures)
    symbols = [SYMBOLS[int(i)] for i in rng.integers(0, len(SYMBOLS), args.count * 2)]
    write(OUT / "symbols", [(-1, "font", rendered(s, rng)) for s in symbols])
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
