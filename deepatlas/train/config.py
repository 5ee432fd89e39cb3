"""The trainer's options, shared by every method."""

from __future__ import annotations

from dataclasses import dataclass

from deepatlas.config import option


@dataclass
class TrainConfig:
    steps: int = option(2000, "optimizer steps to train for (resuming continues up to this number)", low=1)
    batch_size: int = option(128, "examples per step and per process", low=1)
    lr: float = option(2e-3, "peak learning rate of AdamW", low=0.0, high=10.0)
    weight_decay: float = option(0.0, "AdamW decoupled weight decay", low=0.0)
    beta1: float = option(0.9, "AdamW beta1", low=0.0, high=1.0)
    beta2: float = option(0.999, "AdamW beta2", low=0.0, high=1.0)
    warmup: int = option(100, "linear learning-rate warm-up steps", low=0)
    lr_decay: str = option("constant", "after warm-up: constant | cosine (to 10% of the peak)", choices=("constant", "cosine"))
    grad_clip: float = option(1.0, "clip the gradient norm to this value (0: off)", low=0.0)
    ema_decay: float = option(0.999, "EMA decay of the weights kept for sampling (0: off)", low=0.0, high=1.0)
    seed: int = option(0, "seed of the data order and of all training noise")
    log_every: int = option(50, "write a metrics.jsonl line every N steps", low=1)
    ckpt_every: int = option(500, "write a checkpoint (and sample pictures) every N steps", low=1)
    keep: int = option(2, "checkpoints kept on disk (older ones are deleted)", low=1)
    threads: int = option(0, "torch CPU threads (0: torch's default)", low=0)


# Fields that may change when a run is resumed: they extend or observe the run, not define it.
RESUMABLE_CHANGES = {"steps", "log_every", "ckpt_every", "keep", "threads"}
