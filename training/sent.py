"""Pictures as users send them, made from a dataset's own: what a digit model trains on
beside the dataset as its scanner made it (``--as-sent``), and what its OOD threshold is
set with (``training.trust``), so that "not in distribution" means "not a digit" rather
than "not from MNIST's scanner".

A user photographs or scans dark ink on paper, at whatever resolution, and the service
inverts, cleans and centres it (``cnnlab.uploads``). ``as_sent`` turns each 28x28 picture
into such a user's picture — blown up (after losing resolution, sometimes), on paper that is
not white, blurred, JPEG-compressed, rotated, small on a bigger sheet, and for digits
written with a thicker or thinner stroke — and prepares it exactly as the service prepares
an upload. ``printed_digits`` adds digits typeset in the TrueType fonts matplotlib ships
(a printed form, a sign): in distribution for a digit model too.

Every change is random in kind and strength (seeded); none of it is the code or the
pictures ``bench/elsewhere.py`` makes the evaluation set with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from cnnlab.centering import centres_uploads
from cnnlab.uploads import as_model_sees

Change = Callable[[np.ndarray, np.random.Generator], np.ndarray]
WORK_SIDE = (40, 140)  # a user's picture is this many pixels a side, before the changes


def as_sent(pictures: np.ndarray, dataset: str, rng: np.random.Generator) -> np.ndarray:
    """``pictures`` ``[N, H, W, 1]`` (light on black, as the dataset stores them) as a user
    would send them and the service would prepare them: ``[N, H, W, 1]`` uint8."""
    _, height, width, _ = pictures.shape
    changes = [*PHOTOGRAPHIC, *(STROKES if centres_uploads(dataset) else [])]
    out = np.empty_like(pictures)
    for i, picture in enumerate(pictures[..., 0]):
        sheet = enlarged(255 - picture, rng)  # dark ink on white paper
        for k in rng.choice(len(changes), int(rng.integers(1, 4)), replace=False):
            sheet = changes[k](sheet, rng)
        out[i, ..., 0] = prepared(sheet, height, width, dataset)
    return out


def prepared(sheet: np.ndarray, height: int, width: int, dataset: str) -> np.ndarray:
    """One grayscale picture as the service prepares an upload for a model of
    ``dataset``."""
    pixels, _ = as_model_sees(sheet[None], height, width, "auto",
                              center=centres_uploads(dataset))
    return pixels[0]


def enlarged(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blown up to a user's size, sometimes from fewer pixels than it has (a low-resolution
    camera or a thumbnail), by a random interpolation."""
    if rng.random() < 0.4:
        small = int(rng.integers(9, 20))
        picture = cv2.resize(picture, (small, small), interpolation=cv2.INTER_AREA)
    side = int(rng.integers(*WORK_SIDE))
    how = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(3))]
    return cv2.resize(picture, (side, side), interpolation=how)


def blur(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus, or moved: a Gaussian of 1-3 % of the side."""
    sigma = float(rng.uniform(0.01, 0.03)) * sheet.shape[0]
    return cv2.GaussianBlur(sheet, (0, 0), sigma)


def jpeg(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(5, 60))
    encoded = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return sheet if decoded is None else decoded


def paper(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paper that is not white (grey, lit from one side, grainy) and ink that is not
    black."""
    h, w = sheet.shape
    light = float(rng.uniform(140, 250))
    slope = np.linspace(0.0, float(rng.uniform(-40, 40)), w)[None, :]
    grain = rng.normal(0.0, float(rng.uniform(0, 12)), (h, w))
    background = light + slope + grain
    ink = float(rng.uniform(0, min(110, light - 60)))
    mix = sheet.astype(np.float32) / 255.0  # 1 = paper, 0 = ink
    return np.clip(mix * background + (1 - mix) * ink, 0, 255).astype(np.uint8)


def turned(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = sheet.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-25, 25)), 1.0)
    return cv2.warpAffine(sheet, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)


def small_on_sheet(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small somewhere on a bigger sheet of the same paper."""
    h, w = sheet.shape
    grow = float(rng.uniform(1.3, 3.0))
    big = np.full((int(h * grow), int(w * grow)), int(np.median(sheet[0])), np.uint8)
    y, x = int(rng.integers(0, big.shape[0] - h + 1)), int(rng.integers(0, big.shape[1] - w + 1))
    big[y:y + h, x:x + w] = sheet
    return big


def stroke(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thicker (marker) or thinner (fine pen) stroke: the dark ink grown or shrunk by
    2-6 % of the side."""
    side = max(2, int(float(rng.uniform(0.02, 0.06)) * sheet.shape[0]))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.erode(sheet, kernel) if rng.random() < 0.6 else cv2.dilate(sheet, kernel)


PHOTOGRAPHIC: list[Change] = [blur, jpeg, paper, turned, small_on_sheet]
STROKES: list[Change] = [stroke]


def font_files() -> list[Path]:
    """The TrueType fonts matplotlib ships that draw digits plainly (no symbol fonts, no
    display cuts: those hold no digits)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(f for f in folder.glob("*.ttf")
                  if f.name.startswith(("DejaVuSans", "DejaVuSerif", "STIXGeneral", "cmr",
                                        "cmss", "cmtt"))
                  and "Display" not in f.name)


def printed_digits(count: int, rng: np.random.Generator, height: int = 28,
                   width: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits typeset in matplotlib's fonts, of random size, made bolder at
    random, through up to two of ``as_sent``'s changes and prepared as digit uploads:
    ``[N, H, W, 1]`` pictures and their labels ``[N]``."""
    from PIL import Image, ImageDraw, ImageFont

    fonts = font_files()
    if not fonts:
        raise FileNotFoundError("matplotlib ships no TrueType fonts here")
    labels = rng.integers(0, 10, count)
    out = np.empty((count, height, width, 1), np.uint8)
    for i, digit in enumerate(labels.tolist()):
        size = int(rng.integers(36, 110))
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), size)
        bold = int(rng.integers(0, size // 10 + 1))  # from the font's weight to a heavy one
        left, top, right, bottom = (int(v) for v in font.getbbox(str(digit),
                                                                 stroke_width=bold))
        margin = int(rng.integers(8, 40))
        canvas = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 255)
        ImageDraw.Draw(canvas).text((margin - left, margin - top), str(digit), fill=0,
                                    font=font, stroke_width=bold, stroke_fill=0)
        sheet = np.asarray(canvas)
        changes = [*PHOTOGRAPHIC, *STROKES]
        for k in rng.choice(len(changes), int(rng.integers(0, 3)), replace=False):
            sheet = changes[k](sheet, rng)
        out[i, ..., 0] = prepared(sheet, height, width, "mnist")
    return out, labels
