from __future__ import annotations

from pathlib import Path

import pytest

from clients.config import DEFAULT_MIN_CELL_COUNT, SiteConfigError, load_site_config

VALID = """
name = "Hospital Barcelona"
host = "127.0.0.2"
port = 5001
token = "  tok-123  "
superlink = "10.0.0.5:8000"
supernode_port = 9095
flwr_home = "state/flwr"
restart_supernode = false

[[datasets]]
name = "breast-cancer"
path = "data/bc.csv"
target = "diagnosis"

[[datasets]]
name = "other"
path = "/abs/other.csv"
target = "y"
"""

MINIMAL = """
name = "Hospital Madrid"
token = "tok"
superlink = "127.0.0.1:8000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_it_reads_every_key_and_resolves_paths_against_the_toml(tmp_path: Path) -> None:
    cfg = load_site_config(write(tmp_path, VALID))

    assert cfg.path == (tmp_path / "site.toml").resolve()
    assert cfg.name == "Hospital Barcelona"
    assert (cfg.host, cfg.port, cfg.supernode_port) == ("127.0.0.2", 5001, 9095)
    assert cfg.token == "tok-123"
    assert cfg.superlink == "10.0.0.5:8000"
    assert cfg.flwr_home == (tmp_path / "state" / "flwr").resolve()
    assert cfg.restart_supernode is False
    assert [(d.name, d.path, d.target) for d in cfg.datasets] == [
        ("breast-cancer", (tmp_path / "data" / "bc.csv").resolve(), "diagnosis"),
        ("other", Path("/abs/other.csv"), "y"),
    ]
    assert cfg.dataset("other") is cfg.datasets[1]
    assert cfg.dataset("missing") is None


def test_it_applies_defaults(tmp_path: Path) -> None:
    cfg = load_site_config(write(tmp_path, MINIMAL))

    assert (cfg.host, cfg.port, cfg.supernode_port) == ("127.0.0.1", 5000, 9094)
    assert cfg.flwr_home == (tmp_path / ".flwr").resolve()
    assert cfg.restart_supernode is True
    assert cfg.datasets == ()


def test_it_reads_the_token_from_token_file(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("from-file\n", encoding="utf-8")
    text = MINIMAL.replace('token = "tok"', 'token_file = "token.txt"')

    assert load_site_config(write(tmp_path, text)).token == "from-file"


def test_it_keeps_the_token_out_of_repr(tmp_path: Path) -> None:
    cfg = load_site_config(write(tmp_path, MINIMAL.replace('"tok"', '"zq-unique-secret"')))

    assert "zq-unique-secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace('name = "Hospital Madrid"', ""), "key 'name': is required"),
        (MINIMAL.replace('"Hospital Madrid"', '"  "'), "key 'name': must not be empty"),
        (MINIMAL.replace('"Hospital Madrid"', "3"), "key 'name': expected a string, got int"),
        (MINIMAL.replace('token = "tok"', ""), "key 'token': is required (or give 'token_file')"),
        (MINIMAL.replace('"tok"', '""'), "key 'token': must not be empty"),
        (
            MINIMAL + 'token_file = "t.txt"\n',
            "key 'token': give either 'token' or 'token_file', not both",
        ),
        (
            MINIMAL.replace('token = "tok"', 'token_file = "absent.txt"'),
            "key 'token_file': cannot read",
        ),
        (
            MINIMAL.replace('superlink = "127.0.0.1:8000"', ""),
            "key 'superlink': is required",
        ),
        (
            MINIMAL.replace('"127.0.0.1:8000"', '"127.0.0.1"'),
            "key 'superlink': expected HOST:PORT, got '127.0.0.1'",
        ),
        (
            MINIMAL.replace('"127.0.0.1:8000"', '"127.0.0.1:http"'),
            "key 'superlink': 'http' is not a port number (1-65535)",
        ),
        (MINIMAL + 'port = "5000"\n', "key 'port': expected an integer, got str"),
        (MINIMAL + "port = true\n", "key 'port': expected an integer, got bool"),
        (MINIMAL + "port = 70000\n", "key 'port': 70000 is not a port number (0-65535)"),
        (
            MINIMAL + "supernode_port = 0\n",
            "key 'supernode_port': 0 is not a port number (1-65535)",
        ),
        (
            MINIMAL + "port = 9094\n",
            "key 'supernode_port': 9094 is already the client API's port",
        ),
        (
            MINIMAL + 'restart_supernode = "yes"\n',
            "key 'restart_supernode': expected true or false, got str",
        ),
        (MINIMAL + 'tokn = "typo"\n', "unknown key(s): tokn"),
        (MINIMAL + 'datasets = "x"\n', "key 'datasets': expected [[datasets]] tables"),
        (
            MINIMAL + '[[datasets]]\nname = "a"\npath = "a.csv"\n',
            "datasets[0]: key 'target' is required",
        ),
        (
            MINIMAL + '[[datasets]]\nname = "a"\npath = ""\ntarget = "y"\n',
            "datasets[0]: key 'path' must be a non-empty string",
        ),
        (
            MINIMAL + '[[datasets]]\nname = "a"\npath = "a.csv"\ntarget = "y"\ncolor = 1\n',
            "datasets[0]: unknown key(s): color",
        ),
        (
            MINIMAL
            + '[[datasets]]\nname = "a"\npath = "a.csv"\ntarget = "y"\n'
            + '[[datasets]]\nname = "a"\npath = "b.csv"\ntarget = "y"\n',
            "datasets[1]: dataset name 'a' is used twice",
        ),
        ("name = ", "invalid TOML"),
    ],
)
def test_it_rejects_invalid_config_with_a_precise_message(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "t.txt").write_text("tok", encoding="utf-8")
    path = write(tmp_path, text)

    with pytest.raises(SiteConfigError) as error:
        load_site_config(path)

    assert message in str(error.value)
    assert str(path.resolve()) in str(error.value)


def test_it_reports_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match="site config not found: .*nope.toml"):
        load_site_config(tmp_path / "nope.toml")


def test_it_reports_an_empty_token_file(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text(" \n", encoding="utf-8")
    path = write(tmp_path, MINIMAL.replace('token = "tok"', 'token_file = "token.txt"'))

    with pytest.raises(SiteConfigError, match=r"key 'token_file': .*token.txt is empty"):
        load_site_config(path)


def test_min_cell_count_defaults_to_five_and_refuses_below_one(tmp_path):
    assert DEFAULT_MIN_CELL_COUNT == 5
    for value, problem in (
        ("0", "below 1"),
        ("true", "expected an integer"),
        ('"5"', "expected an integer"),
    ):
        path = tmp_path / "site.toml"
        path.write_text(
            f'name = "A"\ntoken = "t"\nsuperlink = "127.0.0.1:9092"\nmin_cell_count = {value}\n'
        )
        with pytest.raises(SiteConfigError, match=problem):
            load_site_config(path)
    path.write_text('name = "A"\ntoken = "t"\nsuperlink = "127.0.0.1:9092"\nmin_cell_count = 10\n')
    assert load_site_config(path).min_cell_count == 10
