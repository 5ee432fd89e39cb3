"""The configs `deepatlas train M` runs with: each field from its flag, else from M's `defaults`, else from
its dataclass (the dataset: M's `defaults`, else the first of M's `datasets`). `deepatlas train M --help` prints the defaults from the same function (`run_config` with
no flags), so the help shows what a run without flags uses.

The data part is checked against what M and the dataset declare: `--data X` must be one of M's
`datasets`, and a `--data-FIELD` flag must be one the dataset's loader reads (its registered `fields`).
"""

from __future__ import annotations

import argparse
import dataclasses

from deepatlas import config as C
from deepatlas.data.base import DataConfig
from deepatlas.errors import UserError
from deepatlas.registry import Entry, get
from deepatlas.train.config import TrainConfig


def data_flag(field: str) -> str:
    return "--data" if field == "name" else "--data-" + field.replace("_", "-")


def run_config(spec: Entry, args: argparse.Namespace | None = None):
    """The RunConfig of method `spec` from parsed flags (None: no flags, i.e. the defaults)."""
    from deepatlas.train.run import RunConfig

    args = args if args is not None else argparse.Namespace()
    defaults = getattr(spec.obj, "defaults", {})
    base_data = {"name": spec.obj.datasets[0], **defaults.get("data", {})}  # the first dataset is the default
    data = C.from_args(DataConfig, args, prefix="data_", base=base_data)
    check_data(spec, data, given={f.name for f in dataclasses.fields(DataConfig) if hasattr(args, "data_" + f.name)})
    model = C.from_args(spec.obj.Config, args, prefix="model_", base=defaults.get("model"))
    train = C.from_args(TrainConfig, args, prefix="train_", base=defaults.get("train"))
    return RunConfig(spec.name, data, model, train)


def data_fields(method: type) -> set[str]:
    """The DataConfig fields read by any dataset the method accepts (the data flags its help shows)."""
    return {f for name in method.datasets for f in get("dataset", name).fields}


def check_data(spec: Entry, data: DataConfig, given: set[str]) -> None:
    """Refuse a dataset the method does not accept, or a data flag (in `given`) the dataset does not read."""
    dataset = get("dataset", data.name)  # an unknown name fails here, with the closest one suggested
    accepted = spec.obj.datasets
    if data.name not in accepted:
        raise UserError(f"method '{spec.name}' does not take --data {data.name}; it takes --data {' | '.join(accepted)}")
    ignored = sorted(given - set(dataset.fields) - {"name"})
    if ignored:
        reads = ", ".join(data_flag(f) for f in dataset.fields) or "no --data-* options"
        raise UserError(f"dataset '{data.name}' does not use {', '.join(map(data_flag, ignored))} "
                        f"(it reads {reads}); drop {'it' if len(ignored) == 1 else 'them'}")
