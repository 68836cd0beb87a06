from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clients.config import DatasetSpec
from clients.datasets import (
    MAX_FILE_BYTES,
    DatasetError,
    describe_dataset,
    load_dataset,
    split_train_test,
    standardize,
)
from clients.tests.helpers import write_breast_cancer_csv

HEADER = "a,b,target"


def rows(n: int = 12, *, replace: dict[int, str] | None = None) -> str:
    """A valid body of `n` rows (file lines 2..n+1); `replace` swaps whole lines by number."""
    lines = [f"{i}.5,{i * 2},{i % 2}" for i in range(n)]
    for line_number, text in (replace or {}).items():
        lines[line_number - 2] = text
    return "\n".join(lines) + "\n"


def spec(path: Path, target: str = "target") -> DatasetSpec:
    return DatasetSpec(name="ds", path=path, target=target)


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "data.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


MESSY: dict[str, tuple[str | bytes, str]] = {
    "text in a numeric column": (
        f"{HEADER}\n" + rows(replace={5: "1.0,abc,1"}),
        "non-numeric value 'abc' in column 'b' at line 5",
    ),
    "empty cell": (
        f"{HEADER}\n" + rows(replace={4: ",2,0"}),
        "missing value in column 'a' at line 4",
    ),
    "NA marker": (
        f"{HEADER}\n" + rows(replace={9: "1,NA,1"}),
        "missing value in column 'b' at line 9",
    ),
    "missing target value": (
        f"{HEADER}\n" + rows(replace={3: "1,2,"}),
        "missing target value at line 3",
    ),
    "infinite value": (
        f"{HEADER}\n" + rows(replace={6: "inf,2,1"}),
        "non-finite value 'inf' in column 'a' at line 6",
    ),
    "ragged row": (
        f"{HEADER}\n" + rows(replace={7: "1,1"}),
        "line 7: expected 3 fields, found 2",
    ),
    "missing target column": (
        "a,b,label\n" + rows(),
        "target column 'target' not found; the columns are 'a', 'b', 'label'",
    ),
    "duplicate headers": (
        "a,a,target\n" + rows(),
        "duplicate column name(s) in the header: 'a'",
    ),
    "unnamed column": ("a,,target\n" + rows(), "header column(s) 2 have no name"),
    "target only": (
        "target\n" + "\n".join(str(i % 2) for i in range(12)) + "\n",
        "no feature columns besides the target 'target'",
    ),
    "0-byte file": ("", "file is empty"),
    "blank lines only": ("\n\n", "file is empty"),
    "header only": (f"{HEADER}\n", "no data rows (the file has only a header)"),
    "too few rows": (f"{HEADER}\n" + rows(5), "only 5 data rows; at least 10 are needed"),
    "single class": (
        f"{HEADER}\n" + "\n".join(f"{i},{i},1" for i in range(12)) + "\n",
        "target 'target' has a single class ('1'); at least 2 are needed",
    ),
    "semicolon separator": (
        "a;b;target\n" + rows().replace(",", ";"),
        "the header is a single column; the file looks semicolon-separated, "
        "but fields must be separated by commas",
    ),
    "not UTF-8": (
        f"{HEADER}\n".encode() + rows(replace={7: "1,2,X"}).encode().replace(b"X", b"\xff"),
        "line 7: not UTF-8 text",
    ),
}


@pytest.mark.parametrize(("content", "message"), MESSY.values(), ids=MESSY.keys())
def test_it_reports_why_a_messy_csv_is_unusable(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = write(tmp_path, content)

    assert describe_dataset(spec(path)) == {
        "name": "ds",
        "target": "target",
        "ok": False,
        "error": message,
    }
    with pytest.raises(DatasetError) as error:
        load_dataset(spec(path))
    assert str(error.value) == message


def test_it_reports_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"

    description = describe_dataset(spec(path))

    assert description["ok"] is False
    assert description["error"] == f"file not found: {path}"


def test_it_reports_a_folder_given_as_the_file(tmp_path: Path) -> None:
    assert describe_dataset(spec(tmp_path))["error"] == f"not a regular file: {tmp_path}"


def test_it_refuses_a_file_over_the_size_limit_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: cheap to make, slow to read

    assert describe_dataset(spec(path))["error"] == (
        "file is larger than the 200 MB limit (209,715,201 bytes)"
    )


def test_it_describes_a_good_csv_without_its_rows(tmp_path: Path) -> None:
    path = write_breast_cancer_csv(tmp_path / "bc.csv")

    description = describe_dataset(spec(path))

    assert description["ok"] is True
    assert description["rows"] == 569
    assert description["features"] == 30
    assert description["feature_names"][:2] == ["mean_radius", "mean_texture"]
    assert description["target"] == "target"
    assert description["class_counts"] == {"0": 212, "1": 357}
    assert set(description) == {
        "name",
        "ok",
        "rows",
        "features",
        "feature_names",
        "target",
        "class_counts",
    }


def test_it_refreshes_the_cached_description_when_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n" + rows(12))
    first = describe_dataset(spec(path))
    first["rows"] = -1  # callers get copies: the cache stays intact

    assert describe_dataset(spec(path))["rows"] == 12

    path.write_text(f"{HEADER}\n" + rows(20), encoding="utf-8")
    assert describe_dataset(spec(path))["rows"] == 20


def test_it_accepts_a_byte_order_mark_and_spaces_around_names(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff a , b ,target\n" + rows())

    assert load_dataset(spec(path)).feature_names == ["a", "b"]


def test_it_loads_float32_features_and_int64_class_indices(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n" + rows(12))

    data = load_dataset(spec(path))

    assert data.X.dtype == np.float32 and data.X.shape == (12, 2)
    assert data.y.dtype == np.int64
    assert data.X[3].tolist() == [3.5, 6.0]
    assert data.classes == ["0", "1"]
    assert data.y[:4].tolist() == [0, 1, 0, 1]


def test_it_reorders_columns_by_the_federations_feature_names(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a,target,b,extra\n" + "".join(f"{i},{i % 2},{-i},9\n" for i in range(12))
    )

    data = load_dataset(spec(path), feature_names=["b", "a"])

    assert data.feature_names == ["b", "a"]
    assert data.X[5].tolist() == [-5.0, 5.0]


def test_it_reports_a_column_the_federation_needs_but_the_file_lacks(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n" + rows())

    with pytest.raises(DatasetError) as error:
        load_dataset(spec(path), feature_names=["a", "c"])

    assert (
        str(error.value)
        == "column(s) 'c' used by the federation are missing; the file has 'a', 'b'"
    )


def test_it_maps_labels_to_the_federations_class_indices(tmp_path: Path) -> None:
    # This site has never seen class "0": its labels must still index like everyone else's.
    body = "".join(f"{i},{i},{1 + i % 2}\n" for i in range(12))
    path = write(tmp_path, f"{HEADER}\n" + body)

    data = load_dataset(spec(path), classes=["0", "1", "2"])

    assert data.classes == ["0", "1", "2"]
    assert data.y[:4].tolist() == [1, 2, 1, 2]


def test_it_reports_a_label_outside_the_federations_classes(tmp_path: Path) -> None:
    body = "".join(f"{i},{i},{i % 3}\n" for i in range(12))
    path = write(tmp_path, f"{HEADER}\n" + body)

    with pytest.raises(DatasetError) as error:
        load_dataset(spec(path), classes=["0", "1"])

    assert str(error.value) == (
        "label(s) '2' in target 'target' are not among the federation's classes '0', '1'"
    )


def test_it_writes_whole_number_labels_one_way(tmp_path: Path) -> None:
    body = "".join(f"{i},{i},{i % 2}.0\n" for i in range(12))

    assert load_dataset(spec(write(tmp_path, f"{HEADER}\n" + body))).classes == ["0", "1"]


def test_the_split_is_deterministic_and_stratified() -> None:
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.array([0] * 70 + [1] * 28 + [2] * 2)

    first = split_train_test(X, y, test_fraction=0.2, seed=7)
    again = split_train_test(X, y, test_fraction=0.2, seed=7)
    other = split_train_test(X, y, test_fraction=0.2, seed=8)

    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    X_train, X_test, y_train, y_test = first
    assert np.bincount(y_test).tolist() == [14, 6, 1]  # 20 % per class, ≥ 1 each
    assert np.bincount(y_train).tolist() == [56, 22, 1]
    # rows stay whole (features travel with their label) and none is lost or duplicated
    assert np.array_equal(y[(X_test[:, 0] // 2).astype(int)], y_test)
    assert sorted(np.concatenate([X_train[:, 0], X_test[:, 0]]).tolist()) == X[:, 0].tolist()


def test_a_class_with_a_single_row_stays_in_training() -> None:
    X = np.zeros((11, 1), dtype=np.float32)
    y = np.array([0] * 10 + [1])

    _, _, y_train, y_test = split_train_test(X, y)

    assert 1 in y_train and 1 not in y_test


def test_standardization_uses_the_train_splits_statistics() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    test = np.array([[5.0, 7.0]])

    train_s, test_s = standardize(train, test)

    # column 0: mean 2, std 1; column 1 is constant: std counts as 1
    assert train_s.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert test_s.tolist() == [[3.0, 2.0]]
    assert train_s.dtype == test_s.dtype == np.float32
