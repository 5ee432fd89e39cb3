"""`deepatlas report RUN`: one HTML page for a run: its config, the training curves from metrics.jsonl,
the latest sample pictures and the last evaluation (eval.json). Self-contained (images embedded)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from deepatlas.errors import UserError
from deepatlas.registry import register_command
from deepatlas.train.atomic import write_bytes_atomic
from deepatlas.train.metrics import read_metrics


def _png(data: bytes) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def curves_png(records: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in records[-1] if k not in ("step", "lr", "steps_per_s") and isinstance(records[-1][k], (int, float))]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3), dpi=100, squeeze=False)
    steps = [r["step"] for r in records]
    for ax, k in zip(axes[0], keys):
        ax.plot(steps, [r.get(k, float("nan")) for r in records])
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def build_report(run: Path) -> Path:
    run = Path(run)
    if not (run / "config.json").exists():
        raise UserError(f"{run} is not a run directory (no config.json)")
    cfg = json.loads((run / "config.json").read_text())
    parts = [f"<h1>{html.escape(cfg['method'])} on {html.escape(cfg['data']['name'])}</h1>"]
    if (run / "metrics.jsonl").exists() and (records := read_metrics(run / "metrics.jsonl")):
        parts += ["<h2>Training</h2>", _png(curves_png(records)),
                  f"<p>last logged: <code>{html.escape(json.dumps(records[-1]))}</code></p>"]
    if (run / "eval.json").exists():
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in json.loads((run / "eval.json").read_text()).items())
        parts += ["<h2>Evaluation</h2>", f"<table>{rows}</table>"]
    pictures = sorted((run / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)[-4:] if (run / "samples").is_dir() else []
    if pictures:
        parts += ["<h2>Samples</h2>"] + [f"<figure>{_png(p.read_bytes())}<figcaption>{html.escape(p.name)}</figcaption></figure>"
                                         for p in pictures]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(json.dumps(cfg, indent=2))}</pre>"]
    page = ("<!doctype html><meta charset='utf-8'><title>deepatlas report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{image-rendering:pixelated;max-width:100%}"
            "td{padding:2px 12px}</style>" + "\n".join(parts))
    out = run / "report.html"
    write_bytes_atomic(out, page.encode())
    return out


@register_command("report", "report", "write RUN/report.html: config, training curves, samples, evaluation")
def configure(parser):
    parser.add_argument("run", type=Path, help="run directory")

    def run(args) -> int:
        print(f"wrote {build_report(args.run)}")
        return 0

    return run
