"""Errors meant for people: the CLI prints them as one line, without a traceback (unless --debug)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Something the user can fix: a wrong name, a missing file, an out-of-range number."""


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class TrainingInterrupted(UserError):
    """SIGINT/SIGTERM arrived; a checkpoint was written before stopping."""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """`unknown method 'edn'; did you mean 'edm'? (see `deepatlas list`)`."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.4)
    hint = (f"; did you mean '{close[0]}'?" if close else f"; choose one of: {', '.join(choices)}" if choices
            else f"; none is installed")
    return UserError(f"unknown {kind} '{name}'{hint} (see `deepatlas list`)")
