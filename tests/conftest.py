import os

import pytest
import torch

# Keep test processes from fighting over the two cores.
torch.set_num_threads(int(os.environ.get("DEEPATLAS_TEST_THREADS", "1")))


@pytest.fixture
def toy_regression():
    """A tiny method (noisy linear regression) and dataset for exercising the trainer."""
    from dataclasses import dataclass

    from deepatlas.config import option
    from deepatlas.data.base import DataInfo, Dataset, TensorData
    from deepatlas.method import Method

    class Regression(Method):
        @dataclass
        class Config:
            width: int = option(8, "hidden width")
            nan_at: int = option(0, "make the loss NaN when the weights reach this call count (0: never)")

        def __init__(self, cfg, info):
            super().__init__(cfg, info)
            self.net = torch.nn.Sequential(torch.nn.Linear(3, cfg.width), torch.nn.Tanh(), torch.nn.Linear(cfg.width, 1))
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))

        def loss(self, batch):
            self.calls += 1
            noise = 0.01 * torch.randn(len(batch["x"]), 1)  # drawn from the per-step seeded RNG
            err = self.net(batch["x"]) + noise - batch["y"]
            loss = (err ** 2).mean()
            if self.cfg.nan_at and int(self.calls) >= self.cfg.nan_at:
                loss = loss * float("nan")
            return {"loss": loss}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    data = Dataset("toy", DataInfo("vector", (3,)), TensorData(x=x, y=y), TensorData(x=x[:32], y=y[:32]))
    return Regression, data


@pytest.fixture(scope="session")
def tiny_text():
    """The default text corpus, char tokens, sequences of 32."""
    from deepatlas.data.base import DataConfig, load_dataset

    return load_dataset(DataConfig(name="text", seq_len=32))
