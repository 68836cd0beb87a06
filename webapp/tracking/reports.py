"""What a client reports after a round, checked before anything is stored or aggregated.

A reply that fails a check is refused whole with a reason the user sees on the client's row;
nothing of it reaches the history or the global model.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SAMPLES = 10**9
MAX_SECONDS = 7 * 24 * 3600.0


class ReportError(ValueError):
    """A client's report that cannot be stored, with the reason shown to the user."""


# Everything a ClientApp may put in its "metrics" record; anything else is refused, so a
# client cannot smuggle data (or megabytes) into the job's history.
KNOWN_METRICS = frozenset(
    {
        "accuracy",
        "loss",
        "train_loss",
        "train_samples",
        "test_samples",
        "num-examples",
        "train_seconds",
    }
)
MAX_LOSS = 1e9
MAX_SHOWN = 40


def shown(value: Any) -> str:
    """A value as it may appear in a stored reason: repr, cut to a bounded length."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _number(metrics: Mapping[str, Any], key: str, lo: float, hi: float) -> float:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{key} is missing or not a number ({shown(value)})")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ReportError(f"{key}={value!r} is outside [{lo}, {hi}]")
    return value


def _count(metrics: Mapping[str, Any], key: str) -> int:
    value = metrics.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAMPLES:
        raise ReportError(f"{key} must be a non-negative whole number ({shown(value)})")
    return value


@dataclass(frozen=True)
class RoundReport:
    accuracy: float
    loss: float
    train_loss: float
    train_samples: int
    test_samples: int


def validate_report(metrics: Mapping[str, Any]) -> RoundReport:
    """Check what a client reported after a round; raises ReportError with the reason.

    Known keys only; numbers finite and in range (accuracy in [0, 1], losses in
    [0, MAX_LOSS], sample counts whole numbers in [0, MAX_SAMPLES], seconds in
    [0, MAX_SECONDS]).
    """
    if not isinstance(metrics, Mapping):
        raise ReportError(
            f"metrics must be a record of named numbers, not {type(metrics).__name__}"
        )
    unknown = sorted(shown(key) for key in metrics if key not in KNOWN_METRICS)
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ReportError(f"unknown metric(s) {', '.join(unknown[:5])}{more}")
    report = RoundReport(
        accuracy=_number(metrics, "accuracy", 0.0, 1.0),
        loss=_number(metrics, "loss", 0.0, MAX_LOSS),
        train_loss=_number(metrics, "train_loss", 0.0, MAX_LOSS),
        train_samples=_count(metrics, "train_samples"),
        test_samples=_count(metrics, "test_samples"),
    )
    if report.train_samples == 0:
        raise ReportError("train_samples is 0: the client trained on nothing")
    if "num-examples" in metrics and _count(metrics, "num-examples") != report.train_samples:
        raise ReportError(
            f"num-examples={metrics['num-examples']!r} differs from "
            f"train_samples={report.train_samples}"
        )
    if "train_seconds" in metrics:
        _number(metrics, "train_seconds", 0.0, MAX_SECONDS)
    return report


def arrays_mismatch(arrays: Mapping[str, np.ndarray], reference: Mapping[str, Any]) -> str | None:
    """Why a returned model cannot be averaged into the global one (`reference`: layer name →
    anything with a `.shape`), or None if it can."""
    if set(arrays) != set(reference):
        return "returned model has different layers than the global model"
    for key, ref in reference.items():
        value = arrays[key]
        if tuple(value.shape) != tuple(ref.shape):
            return f"layer {key} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
        if not np.all(np.isfinite(value)):
            return f"layer {key} contains NaN or infinite weights"
    return None
