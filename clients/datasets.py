"""Reading a site's CSV datasets: validation, metadata, loading, splitting and scaling.

Format: comma-separated, UTF-8, one header row, every column numeric except the target,
which holds class labels. Rows never leave the site: only `describe_dataset`'s metadata does.
"""

from __future__ import annotations

import copy
import csv
import math
import stat
import threading
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clients.config import DatasetSpec
from clients.protocol import sort_labels
from clients.tables import split_rows

MAX_FILE_BYTES = 200 * 1024 * 1024
MIN_ROWS = 10
# Cells read as "no value" rather than as a (non-numeric) value.
_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
_OTHER_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_CACHE_SIZE = 256


class DatasetError(ValueError):
    """The dataset cannot be used; the message says precisely why."""


@dataclass(frozen=True)
class LoadedDataset:
    X: np.ndarray  # float32, (rows, features)
    y: np.ndarray  # int64 class indices into `classes`
    feature_names: list[str]
    classes: list[str]


@dataclass(frozen=True)
class _Table:
    feature_names: list[str]
    values: np.ndarray  # float64, (rows, features)
    labels: list[str]


def describe_dataset(spec: DatasetSpec) -> dict[str, Any]:
    """Metadata about a dataset, never its rows; never raises for a bad file."""
    key = _cache_key(spec)
    if key is not None:
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return copy.deepcopy(cached)
    try:
        table = _read_table(spec)
    except DatasetError as e:
        description: dict[str, Any] = {
            "name": spec.name,
            "target": spec.target,
            "ok": False,
            "error": str(e),
        }
    else:
        counts = Counter(table.labels)
        description = {
            "name": spec.name,
            "ok": True,
            "rows": len(table.labels),
            "features": len(table.feature_names),
            "feature_names": table.feature_names,
            "target": spec.target,
            "class_counts": {label: counts[label] for label in sort_labels(counts)},
        }
    if key is not None:
        with _cache_lock:
            if len(_cache) >= _CACHE_SIZE:
                del _cache[next(iter(_cache))]  # oldest first
            _cache[key] = description
    return copy.deepcopy(description)


def load_dataset(
    spec: DatasetSpec,
    feature_names: list[str] | None = None,
    classes: list[str] | None = None,
) -> LoadedDataset:
    """Load a dataset, with its columns in `feature_names` order and labels indexed by `classes`.

    Both default to the file's own: the server passes the federation's agreed ones so every
    site's features and class indices line up. Columns outside `feature_names` are dropped.
    """
    table = _read_table(spec)
    if feature_names is None:
        feature_names = table.feature_names
        values = table.values
    else:
        position = {name: i for i, name in enumerate(table.feature_names)}
        missing = [name for name in feature_names if name not in position]
        if missing:
            raise DatasetError(
                f"column(s) {_preview(missing)} used by the federation are missing; "
                f"the file has {_preview(table.feature_names)}"
            )
        values = table.values[:, [position[name] for name in feature_names]]
    if classes is None:
        classes = sort_labels(table.labels)
    index = {label: i for i, label in enumerate(classes)}
    unknown = sort_labels(set(table.labels) - set(index))
    if unknown:
        raise DatasetError(
            f"label(s) {_preview(unknown)} in target {spec.target!r} are not among "
            f"the federation's classes {_preview(classes)}"
        )
    return LoadedDataset(
        X=values.astype(np.float32),
        y=np.array([index[label] for label in table.labels], dtype=np.int64),
        feature_names=list(feature_names),
        classes=list(classes),
    )


def split_train_test(
    X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic stratified split: (X_train, X_test, y_train, y_test).

    Every class with at least 2 rows puts at least one in each split.
    """
    train_rows, test_rows = split_rows(y.astype(str), test_fraction, seed)
    return X[train_rows], X[test_rows], y[train_rows], y[test_rows]


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both splits with the train split's mean and std (a constant column keeps std 1)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return (
        ((train - mean) / std).astype(np.float32),
        ((test - mean) / std).astype(np.float32),
    )


_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_cache_lock = threading.Lock()  # the client API describes datasets from several threads


def _cache_key(spec: DatasetSpec) -> tuple[Any, ...] | None:
    try:
        st = spec.path.stat()
    except OSError:
        return None  # missing files are cheap to re-check
    # ctime too: a chmod that makes the file readable again must invalidate a cached error
    return (spec.name, str(spec.path), spec.target, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _preview(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = len(names) - limit
    return f"{shown}, … ({more} more)" if more > 0 else shown


def _read_table(spec: DatasetSpec) -> _Table:
    path = spec.path
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"file not found: {path}") from None
    except OSError as e:
        raise DatasetError(f"cannot access {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f"not a regular file: {path}")
    if st.st_size > MAX_FILE_BYTES:
        raise DatasetError(
            f"file is larger than the {MAX_FILE_BYTES // 2**20} MB limit ({st.st_size:,} bytes)"
        )
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark
        with path.open(newline="", encoding="utf-8-sig") as f:
            return _parse(csv.reader(f), spec.target)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        # Text is decoded in chunks, ahead of the line being parsed: find the line itself.
        line = _first_undecodable_line(path)
        raise DatasetError(f"line {line}: not UTF-8 text" if line else "not UTF-8 text") from None


def _first_undecodable_line(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        pass  # the file changed under us: the reason without its line will do
    return None


def _rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the line they end on, turning CSV syntax errors into DatasetError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DatasetError(f"line {reader.line_num}: malformed CSV ({e})") from None
        if row:
            yield reader.line_num, row


def _parse(reader: Any, target: str) -> _Table:
    rows = _rows(reader)
    first = next(rows, None)
    if first is None:
        raise DatasetError("file is empty")
    header = [name.strip() for name in first[1]]
    _check_header(header, target)
    target_at = header.index(target)
    feature_at = [i for i, name in enumerate(header) if name != target]
    feature_names = [header[i] for i in feature_at]

    values = array("d")
    labels: list[str] = []
    for line, row in rows:
        if len(row) != len(header):
            raise DatasetError(f"line {line}: expected {len(header)} fields, found {len(row)}")
        for i in feature_at:
            values.append(_number(row[i].strip(), header[i], line))
        label = row[target_at].strip()
        if label.lower() in _MISSING:
            raise DatasetError(f"missing target value at line {line}")
        labels.append(_canonical_label(label))

    if not labels:
        raise DatasetError("no data rows (the file has only a header)")
    if len(labels) < MIN_ROWS:
        raise DatasetError(f"only {len(labels)} data rows; at least {MIN_ROWS} are needed")
    classes = sort_labels(labels)
    if len(classes) < 2:
        raise DatasetError(
            f"target {target!r} has a single class ({classes[0]!r}); at least 2 are needed"
        )
    matrix = np.frombuffer(values, dtype=np.float64).reshape(len(labels), len(feature_at))
    return _Table(feature_names=feature_names, values=matrix, labels=labels)


def _check_header(header: list[str], target: str) -> None:
    if len(header) == 1:
        for sep, sep_name in _OTHER_SEPARATORS.items():
            if sep in header[0]:
                raise DatasetError(
                    f"the header is a single column; the file looks {sep_name}-separated, "
                    "but fields must be separated by commas"
                )
    empty = [str(i + 1) for i, name in enumerate(header) if not name]
    if empty:
        raise DatasetError(f"header column(s) {', '.join(empty)} have no name")
    duplicates = [name for name, n in Counter(header).items() if n > 1]
    if duplicates:
        raise DatasetError(f"duplicate column name(s) in the header: {_preview(duplicates)}")
    if target not in header:
        raise DatasetError(
            f"target column {target!r} not found; the columns are {_preview(header)}"
        )
    if len(header) == 1:
        raise DatasetError(f"no feature columns besides the target {target!r}")


def _number(cell: str, column: str, line: int) -> float:
    if cell.lower() in _MISSING:
        raise DatasetError(f"missing value in column {column!r} at line {line}")
    try:
        value = float(cell)
    except ValueError:
        shown = cell if len(cell) <= 40 else cell[:40] + "…"
        raise DatasetError(
            f"non-numeric value {shown!r} in column {column!r} at line {line}"
        ) from None
    if not math.isfinite(value):
        raise DatasetError(f"non-finite value {cell!r} in column {column!r} at line {line}")
    return value


def _canonical_label(label: str) -> str:
    """Write whole-number labels one way ("1.0" → "1") so sites agree on the class list."""
    try:
        number = float(label)
    except ValueError:
        return label
    return str(int(number)) if number.is_integer() else label
