"""The import directions docs/architecture.md promises, checked on the source itself."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(package: str) -> list[Path]:
    return sorted(
        path
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
        and "migrations" not in path.relative_to(ROOT).parts
    )


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in paths:
        bad = sorted(
            name
            for name in imports_of(path)
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
        )
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


def in_(folder: str, paths: list[Path]) -> list[Path]:
    return [path for path in paths if path.relative_to(ROOT).as_posix().startswith(folder)]


def test_it_finds_the_imports_it_checks():
    """A positive control: the checker sees the imports these tests rely on."""
    assert "clients.task" in imports_of(ROOT / "webapp/serverapp/model.py")
    assert "webapp.models" in imports_of(ROOT / "webapp/tracking/writer.py")


def test_site_code_never_imports_the_web_app_or_django():
    assert offending(sources("clients"), ("webapp", "config", "devstack", "django")) == {}


def test_tracking_imports_only_the_models_below_it():
    assert (
        offending(
            sources("webapp/tracking"),
            (
                "webapp.api",
                "webapp.serverapp",
                "webapp.server_fn",
                "webapp.server_process",
                "webapp.views",
                "webapp.jobs",
                "webapp.sites",
                "webapp.flower",
                "flwr",
                "torch",
                "clients",
            ),
        )
        == {}
    )


def test_only_the_serverapp_imports_torch_or_the_sites_model():
    serverapp = in_("webapp/serverapp", sources("webapp"))
    web = [path for path in sources("webapp") + sources("config") if path not in serverapp]
    assert offending(web, ("torch", "clients.task", "clients.torch_client")) == {}


@pytest.mark.parametrize("package", ["webapp", "config"])
def test_the_web_app_shares_only_the_protocol_and_flower_env_with_site_code(package):
    shared = {"clients.protocol", "clients.flower_env"}
    allowed_in_serverapp = {"clients.task"}
    found = {}
    for path in sources(package):
        extra = allowed_in_serverapp if "serverapp" in path.parts else set()
        bad = sorted(
            name
            for name in imports_of(path)
            if name.split(".")[0] == "clients" and name not in shared | extra
        )
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert found == {}


def test_the_production_app_never_imports_the_demo_tooling():
    production = [
        path for path in sources("webapp") if "management" not in path.relative_to(ROOT).parts
    ]
    assert offending(production + sources("config"), ("devstack", "bench")) == {}


def test_the_serverapp_does_not_import_the_http_layer():
    assert (
        offending(
            sources("webapp/serverapp") + sources("webapp/server_fn"),
            ("webapp.api", "webapp.views", "webapp.forms", "webapp.auth"),
        )
        == {}
    )
