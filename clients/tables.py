"""A site's table in memory: what the CSV loader (`clients.datasets`) produces and what the
federation's preprocessing (statistics, encoding) consumes. Rows never leave the site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Column:
    """One feature column. Numeric: float64 with NaN where a cell is missing. Categorical:
    an object array of `str`, with None where a cell is missing."""

    name: str
    kind: ColumnKind
    values: np.ndarray

    def missing(self) -> np.ndarray:
        """A boolean mask of the missing cells."""
        if self.kind == "numeric":
            return np.isnan(self.values)
        return np.array([v is None for v in self.values], dtype=bool)


@dataclass(frozen=True)
class Table:
    target: str
    columns: tuple[Column, ...]  # the features, in file order; ignored columns are left out
    labels: np.ndarray  # object array of str: the target per row (rows without one dropped)
    ignored: Mapping[str, str] = field(default_factory=dict)  # column -> why it is ignored
    notes: tuple[str, ...] = ()  # what the loader did that a user should know

    @property
    def n_rows(self) -> int:
        return len(self.labels)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def take(self, rows: np.ndarray) -> Table:
        """The same table restricted to `rows` (indices or a boolean mask)."""
        return Table(
            target=self.target,
            columns=tuple(Column(c.name, c.kind, c.values[rows]) for c in self.columns),
            labels=self.labels[rows],
            ignored=self.ignored,
            notes=self.notes,
        )


def split_rows(
    labels: Sequence[str] | np.ndarray, test_fraction: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of row indices: (train rows, test rows), each sorted.

    Every class with at least 2 rows puts at least one in each split; the fixed seed keeps
    the same held-out rows every round, so they never leak into training.
    """
    y = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    test_parts: list[np.ndarray] = []
    for label in sorted(set(y.tolist())):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) >= 2:
            n_test = min(max(round(len(rows) * test_fraction), 1), len(rows) - 1)
        else:
            n_test = 0  # a lone row can only teach
        test_parts.append(rows[:n_test])
    is_test = np.zeros(len(y), dtype=bool)
    if test_parts:
        is_test[np.concatenate(test_parts)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
