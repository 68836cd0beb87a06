"""Messy CSV files at a site: a precise report for each, the site keeps serving its other
datasets, and a job that selects such a dataset fails to start with the site's message."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from clients.config import DatasetSpec, load_site_config
from clients.datasets import describe_dataset
from clients.site import make_api_server
from clients.tests.helpers import write_breast_cancer_csv, write_site_toml

HEADER = "a,b,target"
TOKEN = "messy-site-token"


def body(n: int = 12, **lines: str) -> str:
    """n valid rows (file lines 2..n+1); `lines` replaces whole lines by number, e.g. l5=…"""
    rows = [f"{i}.5,{i * 2},{i % 2}" for i in range(n)]
    for key, text in lines.items():
        rows[int(key[1:]) - 2] = text
    return "\n".join(rows) + "\n"


def sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.write(f"{HEADER}\n".encode())
            f.truncate(size)  # sparse: instant to create, costly only if read

    return make


# name → (content, or a function writing the file; the exact report)
MESSY: dict[str, tuple[str | bytes | Callable[[Path], None], str]] = {
    "a 500 MB file": (
        sparse(500 * 2**20),
        "file is larger than the 200 MB limit (524,288,000 bytes)",
    ),
    "semicolons after a byte-order mark": (
        "\ufeffa;b;target\n" + body().replace(",", ";"),
        "the header is a single column; the file looks semicolon-separated, "
        "but fields must be separated by commas",
    ),
    "tab-separated": (
        "a\tb\ttarget\n" + body().replace(",", "\t"),
        "the header is a single column; the file looks tab-separated, "
        "but fields must be separated by commas",
    ),
    "pipe-separated": (
        "a|b|target\n" + body().replace(",", "|"),
        "the header is a single column; the file looks pipe-separated, "
        "but fields must be separated by commas",
    ),
    "Latin-1 text": (
        "a,b,r\xe9sultat,target\n".encode("latin-1"),
        "line 1: not UTF-8 text",
    ),
    "UTF-16 text": (f"{HEADER}\n{body()}".encode("utf-16"), "line 1: not UTF-8 text"),
    "a PNG image": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "line 1: not UTF-8 text"),
    "a row with too many fields": (
        f"{HEADER}\n" + body(l6="1,2,0,9"),
        "line 6: expected 3 fields, found 4",
    ),
    "a trailing comma": (f"{HEADER}\n" + body(l3="1,2,0,"), "line 3: expected 3 fields, found 4"),
    "a 'nan' cell": (f"{HEADER}\n" + body(l8="nan,2,0"), "missing value in column 'a' at line 8"),
    "a '?' cell": (f"{HEADER}\n" + body(l4="1,?,0"), "missing value in column 'b' at line 4"),
    "whitespace-only cell": (
        f"{HEADER}\n" + body(l5="   ,2,0"),
        "missing value in column 'a' at line 5",
    ),
    "-inf": (
        f"{HEADER}\n" + body(l9="-inf,2,1"),
        "non-finite value '-inf' in column 'a' at line 9",
    ),
    "a number that overflows": (
        f"{HEADER}\n" + body(l2="1e999,2,0"),
        "non-finite value '1e999' in column 'a' at line 2",
    ),
    "a decimal comma": (
        f"{HEADER}\n" + body(l7='"1,5",2,1'),
        "non-numeric value '1,5' in column 'a' at line 7",
    ),
    "a spreadsheet error": (
        f"{HEADER}\n" + body(l10="#DIV/0!,2,0"),
        "non-numeric value '#DIV/0!' in column 'a' at line 10",
    ),
    "10 000 characters of text in a cell": (
        f"{HEADER}\n" + body(l3="1," + "z" * 10_000 + ",0"),
        f"non-numeric value '{'z' * 40}…' in column 'b' at line 3",
    ),
    "a missing label": (f"{HEADER}\n" + body(l11="1,2,?"), "missing target value at line 11"),
    "the target twice": (
        "target,a,target\n" + body(),
        "duplicate column name(s) in the header: 'target'",
    ),
    "a blank column name": ("a,  ,target\n" + body(), "header column(s) 2 have no name"),
    "the target in another case": (
        "a,b,Target\n" + body(),
        "target column 'target' not found; the columns are 'a', 'b', 'Target'",
    ),
    "a byte-order mark only": ("\ufeff", "file is empty"),
    "a header with a byte-order mark and no rows": (
        f"\ufeff{HEADER}\n",
        "no data rows (the file has only a header)",
    ),
    "one class only": (
        f"{HEADER}\n" + "\n".join(f"{i},{i},yes" for i in range(20)) + "\n",
        "target 'target' has a single class ('yes'); at least 2 are needed",
    ),
    "text everywhere": (
        "name,city,target\n" + "\n".join(f"p{i},Girona,{i % 2}" for i in range(12)) + "\n",
        "non-numeric value 'p0' in column 'name' at line 2",
    ),
}


def write(path: Path, content: str | bytes | Callable[[Path], None]) -> Path:
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_the_table_has_at_least_twenty_messy_files() -> None:
    assert len(MESSY) >= 20


@pytest.mark.parametrize(("content", "report"), MESSY.values(), ids=MESSY.keys())
def test_it_reports_precisely_what_is_wrong(tmp_path: Path, content, report: str) -> None:
    path = write(tmp_path / "messy.csv", content)

    assert describe_dataset(DatasetSpec("messy", path, "target")) == {
        "name": "messy",
        "target": "target",
        "ok": False,
        "error": report,
    }


def get(address: tuple[str, int], path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def messy_site(tmp_path: Path):
    """One site holding every messy file of the table and two good datasets."""
    files = {"good-1": "good1.csv", "good-2": "good2.csv"}
    write_breast_cancer_csv(tmp_path / "good1.csv", rows=slice(0, 100))
    write_breast_cancer_csv(tmp_path / "good2.csv", rows=slice(100, 200))
    for i, (content, _) in enumerate(MESSY.values()):
        files[f"messy-{i:02}"] = write(tmp_path / f"messy{i:02}.csv", content).name
    server = make_api_server(load_site_config(write_site_toml(tmp_path, files, token=TOKEN)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def test_the_site_keeps_serving_its_other_datasets(messy_site) -> None:
    status, answer = get(messy_site, "/datasets")

    assert status == 200
    by_name = {d["name"]: d for d in answer["datasets"]}
    assert [by_name[f"messy-{i:02}"]["error"] for i in range(len(MESSY))] == [
        report for _, report in MESSY.values()
    ]
    assert by_name["good-1"]["ok"] and by_name["good-1"]["rows"] == 100
    assert by_name["good-2"]["ok"] and by_name["good-2"]["rows"] == 100
    assert "row" not in json.dumps(by_name["good-1"]["class_counts"])
    assert get(messy_site, "/health") == (
        200,
        {
            "status": "ok",
            "name": "Hospital Test",
            "datasets": len(MESSY) + 2,
            "supernode": "stopped",
        },
    )
