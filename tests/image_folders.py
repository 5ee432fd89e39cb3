"""Small folders of picture files written by tests: every picture has a known constant value (or a known
pattern), so what the `images` loader makes of it can be checked exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def grey(path: Path, value: int, size=(20, 14)) -> Path:
    """A constant grey picture, size (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8), "L").save(path)
    return path


def rgb(path: Path, colour: tuple[int, int, int], size=(18, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.broadcast_to(np.array(colour, np.uint8), (*size[::-1], 3)).copy(), "RGB").save(path)
    return path


def labelled(root: Path) -> Path:
    """root/cat: 4 grey PNGs (values 10..40), root/dog: 3 RGB PNGs + 1 RGB JPEG (red values 200..230),
    and files the loader must leave alone (a text file, a hidden folder)."""
    for i in range(4):
        grey(root / "cat" / f"c{i}.png", 10 + 10 * i)
    for i in range(3):
        rgb(root / "dog" / f"d{i}.png", (200 + 10 * i, 0, 50))
    rgb(root / "dog" / "sub" / "d3.JPG", (230, 0, 50))
    (root / "notes.txt").write_text("not a picture")
    grey(root / ".thumbnails" / "x.png", 255)
    return root


def flat(root: Path, n: int = 8) -> Path:
    """n grey PNGs of values 20, 40, ... directly in root (an unlabelled folder)."""
    for i in range(n):
        grey(root / f"img{i:02d}.png", 20 * (i + 1), size=(16 + i, 30))
    return root
