"""metrics.jsonl: one JSON object per logged step. On resume, lines past the resumed step are dropped
so the file reads as if the run had never stopped."""

from __future__ import annotations

import json
from pathlib import Path

from deepatlas.train.atomic import write_bytes_atomic


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except ValueError:
                break  # a line cut by a crash: drop it and everything after
        write_bytes_atomic(self.path, ("\n".join(kept) + "\n" if kept else "").encode())

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]
