"""A site's configuration, read from its ``site.toml``.

Example::

    name = "Hospital Barcelona"
    port = 5001
    token_file = "token.txt"        # or: token = "…"
    superlink = "127.0.0.1:8000"
    supernode_port = 9095
    min_cell_count = 5              # counts below this are never shown or sent

    [[datasets]]
    name = "breast-cancer"
    path = "data/breast_cancer.csv"  # relative to this file
    target = "target"

Production (TLS + SuperNode authentication, see docs/production.md): `superlink` becomes a
table instead of a string::

    [superlink]
    address = "superlink.example.org:9093"
    root_certificates = "ca.pem"     # CA that signed the SuperLink's certificate
    auth_key = "supernode_key"       # OpenSSH EC private key; its .pub is registered
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

_TOP_KEYS = {
    "name",
    "host",
    "port",
    "token",
    "token_file",
    "superlink",
    "supernode_port",
    "flwr_home",
    "restart_supernode",
    "min_cell_count",
    "datasets",
}
_DATASET_KEYS = {"name", "path", "target"}
_SUPERLINK_KEYS = {"address", "root_certificates", "auth_key"}


DEFAULT_MIN_CELL_COUNT = 5


class SiteConfigError(ValueError):
    """The site configuration is missing, unreadable or invalid."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    path: Path  # absolute
    target: str


@dataclass(frozen=True)
class SiteConfig:
    path: Path  # absolute path of the site.toml itself
    name: str
    token: str = field(repr=False)  # never end up in logs or tracebacks
    superlink: str
    flwr_home: Path
    host: str = "127.0.0.1"
    port: int = 5000
    supernode_port: int = 9094
    restart_supernode: bool = True
    # Privacy: a count below this (a category, a class, a confusion cell) is never shown or
    # sent by this site; it is folded into "other" or sent as null.
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT
    datasets: tuple[DatasetSpec, ...] = ()
    # TLS to the SuperLink when set (absolute path of the CA bundle); plain HTTP otherwise.
    root_certificates: Path | None = None
    # SuperNode authentication: the node's EC private key (OpenSSH format).
    auth_key: Path | None = None

    def dataset(self, name: str) -> DatasetSpec | None:
        return next((d for d in self.datasets if d.name == name), None)


def load_site_config(path: str | Path) -> SiteConfig:
    path = Path(path).expanduser().resolve()
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise SiteConfigError(f"site config not found: {path}") from None
    except OSError as e:
        raise SiteConfigError(f"cannot read site config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SiteConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise SiteConfigError(f"{path}: not UTF-8 text") from None
    return _parse(raw, path)


def _error(path: Path, key: str, problem: str) -> SiteConfigError:
    return SiteConfigError(f"{path}: key '{key}': {problem}")


def _parse(raw: dict[str, Any], path: Path) -> SiteConfig:
    base = path.parent
    fail = partial(_error, path)

    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise SiteConfigError(f"{path}: unknown key(s): {', '.join(unknown)}")

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if value is None:
            raise fail(key, "is required")
        if not isinstance(value, str):
            raise fail(key, f"expected a string, got {type(value).__name__}")
        if not value.strip():
            raise fail(key, "must not be empty")
        return value.strip()

    def port(key: str, default: int, lowest: int) -> int:
        value = raw.get(key, default)
        # bool is an int subclass: `port = true` must not pass as 1
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail(key, f"expected an integer, got {type(value).__name__}")
        if not lowest <= value <= 65535:
            raise fail(key, f"{value} is not a port number ({lowest}-65535)")
        return value

    restart = raw.get("restart_supernode", True)
    if not isinstance(restart, bool):
        raise fail("restart_supernode", f"expected true or false, got {type(restart).__name__}")

    flwr_home = base / text("flwr_home") if "flwr_home" in raw else base / ".flwr"
    host = text("host", "127.0.0.1")
    api_port = port("port", 5000, 0)  # 0 = any free port (tests)
    supernode_port = port("supernode_port", 9094, 1)
    if supernode_port == api_port:
        raise fail("supernode_port", f"{supernode_port} is already the client API's port")

    min_cell_count = raw.get("min_cell_count", DEFAULT_MIN_CELL_COUNT)
    if not isinstance(min_cell_count, int) or isinstance(min_cell_count, bool):
        raise fail("min_cell_count", f"expected an integer, got {type(min_cell_count).__name__}")
    if min_cell_count < 1:
        raise fail("min_cell_count", f"{min_cell_count} is below 1")

    superlink, root_certificates, auth_key = _superlink_table(raw.get("superlink"), path)
    return SiteConfig(
        path=path,
        name=text("name"),
        token=_token(raw, path),
        superlink=superlink,
        root_certificates=root_certificates,
        auth_key=auth_key,
        host=host,
        port=api_port,
        supernode_port=supernode_port,
        flwr_home=flwr_home.resolve(),
        restart_supernode=restart,
        min_cell_count=min_cell_count,
        datasets=_datasets(raw.get("datasets", []), base, path),
    )


def _token(raw: dict[str, Any], path: Path) -> str:
    fail = partial(_error, path)
    if "token" in raw and "token_file" in raw:
        raise fail("token", "give either 'token' or 'token_file', not both")
    if "token_file" in raw:
        value = raw["token_file"]
        if not isinstance(value, str) or not value.strip():
            raise fail("token_file", "expected a non-empty file path")
        token_path = path.parent / value
        try:
            token = token_path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise fail("token_file", f"cannot read {token_path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise fail("token_file", f"{token_path} is not UTF-8 text") from None
        if not token:
            raise fail("token_file", f"{token_path} is empty")
        return token
    if "token" not in raw:
        raise fail("token", "is required (or give 'token_file')")
    token = raw["token"]
    if not isinstance(token, str):
        raise fail("token", f"expected a string, got {type(token).__name__}")
    if not token.strip():
        raise fail("token", "must not be empty")
    return token.strip()


def _superlink_table(raw: Any, path: Path) -> tuple[str, Path | None, Path | None]:
    """`superlink = "HOST:PORT"`, or a [superlink] table with TLS and authentication files."""
    if raw is None:
        raise _error(path, "superlink", "is required")
    if isinstance(raw, str):
        if not raw.strip():
            raise _error(path, "superlink", "must not be empty")
        return _superlink(raw.strip(), path), None, None
    if not isinstance(raw, dict):
        raise _error(path, "superlink", f"expected HOST:PORT or a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _SUPERLINK_KEYS)
    if unknown:
        raise SiteConfigError(f"{path}: [superlink]: unknown key(s): {', '.join(unknown)}")
    address = raw.get("address")
    if not isinstance(address, str) or not address.strip():
        raise _error(path, "superlink.address", "expected HOST:PORT")
    files: dict[str, Path | None] = {}
    for key in ("root_certificates", "auth_key"):
        value = raw.get(key)
        if value is None:
            files[key] = None
            continue
        if not isinstance(value, str) or not value.strip():
            raise _error(path, f"superlink.{key}", "expected a non-empty file path")
        file_path = (path.parent / value.strip()).resolve()
        if not file_path.is_file():
            raise _error(path, f"superlink.{key}", f"no such file: {file_path}")
        files[key] = file_path
    if files["auth_key"] is not None and files["root_certificates"] is None:
        # Flower refuses SuperNode authentication over plain HTTP.
        raise _error(path, "superlink.auth_key", "needs root_certificates (TLS) too")
    return _superlink(address.strip(), path), files["root_certificates"], files["auth_key"]


def _superlink(value: str, path: Path) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise _error(path, "superlink", f"expected HOST:PORT, got {value!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _error(path, "superlink", f"{port!r} is not a port number (1-65535)")
    return value


def _datasets(raw: Any, base: Path, path: Path) -> tuple[DatasetSpec, ...]:
    if not isinstance(raw, list):
        raise SiteConfigError(f"{path}: key 'datasets': expected [[datasets]] tables")
    specs: list[DatasetSpec] = []
    for i, table in enumerate(raw):
        where = f"{path}: datasets[{i}]"
        if not isinstance(table, dict):
            raise SiteConfigError(f"{where}: expected a table")
        unknown = sorted(set(table) - _DATASET_KEYS)
        if unknown:
            raise SiteConfigError(f"{where}: unknown key(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for key in ("name", "path", "target"):
            value = table.get(key)
            if value is None:
                raise SiteConfigError(f"{where}: key '{key}' is required")
            if not isinstance(value, str) or not value.strip():
                raise SiteConfigError(f"{where}: key '{key}' must be a non-empty string")
            values[key] = value.strip()
        if any(s.name == values["name"] for s in specs):
            raise SiteConfigError(f"{where}: dataset name {values['name']!r} is used twice")
        specs.append(
            DatasetSpec(
                name=values["name"],
                path=(base / values["path"]).resolve(),
                target=values["target"],
            )
        )
    return tuple(specs)
