"""The HTML run report and the picture helpers."""

import json

import numpy as np
import pytest
import torch

from deepatlas.errors import UserError
from deepatlas.report.grid import image_grid
from deepatlas.report.html import build_report


def test_image_grid_places_images_row_major():
    imgs = torch.full((3, 1, 2, 2), -1.0)
    imgs[1] = 1.0  # second image white
    g = image_grid(imgs, nrow=2, pad=1, scale=1)
    assert g.shape == (1 + 2 * 3, 1 + 2 * 3)
    assert (g[1:3, 1:3] == 0).all() and (g[1:3, 4:6] == 255).all() and (g[4:6, 1:3] == 0).all()


def test_report_embeds_curves_samples_and_eval(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"method": "edm", "data": {"name": "digits"}}))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1 / s}) + "\n" for s in (1, 2, 3)))
    (tmp_path / "eval.json").write_text(json.dumps({"fid": 1.5}))
    from deepatlas.report.grid import save_grid

    save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "samples" / "step-1.png")
    page = build_report(tmp_path).read_text()
    assert page.count("<img") == 2 and "<td>fid</td><td>1.5</td>" in page and "edm on digits" in page


def test_report_of_a_non_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        build_report(tmp_path)
