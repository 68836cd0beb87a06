"""Every Flower process runs with the same settings: no call leaves the federation, nothing
is installed at run time, its state stays in its own folder."""

import os
from pathlib import Path

import pytest

from clients.flower_env import VENV_BIN, apply_flower_settings, flower_env

QUIET = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}


def test_it_adds_flowers_home_settings_and_this_venv_to_the_given_environment(
    tmp_path: Path,
) -> None:
    base = {"PATH": "/usr/bin", "FLWR_TELEMETRY_ENABLED": "1", "OTHER": "kept"}

    env = flower_env(tmp_path / "home", base)

    assert env == {
        **QUIET,
        # Flower starts flower-superexec, flwr-serverapp and flwr-clientapp by name
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin",
        "FLWR_HOME": str(tmp_path / "home"),
        "OTHER": "kept",
    }
    assert base["FLWR_TELEMETRY_ENABLED"] == "1"  # the caller's mapping is left alone


def test_it_starts_from_this_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDTRACK_FLOWER_ENV_PROBE", "inherited")
    monkeypatch.delenv("PATH")

    env = flower_env(tmp_path)

    assert env["FEDTRACK_FLOWER_ENV_PROBE"] == "inherited"
    assert env["PATH"] == str(VENV_BIN)


def test_it_applies_the_settings_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in QUIET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "1")

    apply_flower_settings()

    assert {name: os.environ[name] for name in QUIET} == QUIET
