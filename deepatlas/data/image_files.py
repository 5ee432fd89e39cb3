"""Reading picture files (PNG, JPEG) into float tensors, shared by the `images` and `coco` datasets and
by `deepatlas predict`.

- Opening: Pillow decodes the whole file (a truncated or corrupt file is a one-line error naming it) and
  the EXIF orientation of phone photos is applied.
- Grey or colour: modes 1, L, LA, I, I;16* and F are grey, P (palette) is grey when every palette entry
  used is grey, every other mode (RGB, RGBA, CMYK, YCbCr, ...) is colour. A set of pictures becomes one
  channel count: RGB if any picture is colour (grey ones are repeated on the three channels), else grey;
  forcing grey converts colour with Pillow's ITU-R 601 luma, L = 0.299 R + 0.587 G + 0.114 B.
  Alpha is dropped (the colour channels are kept as they are).
- Values: 8-bit pictures are divided by 255, 16-bit ones (I;16*, or mode I with values above 255) by
  65535, float pictures (mode F) taken as they are if in [0, 1], else divided by 255.
- Resizing is bilinear with antialiasing (torch's `interpolate(antialias=True)`), so a photo shrunk to
  32 pixels is averaged rather than aliased. `fit_square` scales the shorter side to R and keeps the
  centre R x R; `letterbox` scales the longer side to R, puts the picture top-left and pads the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from deepatlas.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def open_image(path: str | Path) -> Image.Image:
    """The decoded picture (EXIF orientation applied); a one-line UserError naming an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    try:
        pic = Image.open(path)
        pic.load()
        pic = ImageOps.exif_transpose(pic)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: not a readable image ({e}); deepatlas reads {', '.join(EXTENSIONS)} files") from None
    return pic


def peek_colour(path: str | Path) -> bool:
    """Whether a file holds a colour picture, from its header (palette pictures are decoded to tell)."""
    try:
        with Image.open(path) as pic:
            return is_colour(pic)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: not a readable image ({e}); deepatlas reads {', '.join(EXTENSIONS)} files") from None


def is_colour(pic: Image.Image) -> bool:
    if pic.mode in GREY_MODES:
        return False
    if pic.mode in ("P", "PA"):
        rgb = np.asarray(pic.convert("RGB"))
        return not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return True


def to_tensor(pic: Image.Image, channels: int) -> torch.Tensor:
    """(channels, H, W) float32 in [0, 1]."""
    mode = pic.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        a = np.asarray(pic, dtype=np.float64)
        if mode == "F":
            scale = 1.0 if np.nanmax(a, initial=0) <= 1 else 255.0
        else:
            scale = 65535.0 if mode.startswith("I;16") or np.nanmax(a, initial=0) > 255 else 255.0
        a = np.clip(np.nan_to_num(a / scale), 0, 1)[None]
        t = torch.from_numpy(a.astype(np.float32))
        return t.expand(channels, -1, -1).clone() if channels == 3 else t
    a = np.asarray(pic.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255
    a = a[None] if channels == 1 else a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))


def resize(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(C, H, W) -> (C, h, w), bilinear with antialiasing; unchanged when already that size."""
    if t.shape[-2:] == (h, w):
        return t
    return F.interpolate(t[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def fit_square(t: torch.Tensor, r: int) -> torch.Tensor:
    """Shorter side scaled to r, then the centre r x r: (C, H, W) -> (C, r, r)."""
    h, w = t.shape[-2:]
    s = r / min(h, w)
    nh, nw = max(r, round(h * s)), max(r, round(w * s))
    t = resize(t, nh, nw)
    top, left = (nh - r) // 2, (nw - r) // 2
    return t[:, top: top + r, left: left + r]


def letterbox(t: torch.Tensor, r: int, fill: float = 0.0) -> tuple[torch.Tensor, float]:
    """Longer side scaled to r, placed top-left on an r x r canvas of `fill` -> (canvas, scale s).
    A point (x, y) of the picture is at (s x, s y) on the canvas."""
    h, w = t.shape[-2:]
    s = r / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    out = torch.full((t.shape[0], r, r), fill, dtype=t.dtype)
    out[:, :nh, :nw] = resize(t, nh, nw)
    return out, s
