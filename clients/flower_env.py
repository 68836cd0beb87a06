"""The environment every Flower process of this project runs with, defined once.

Site code (`clients.site`) and the platform's tooling (`config.settings`, `devstack`, `bench`)
all import it, so it imports neither Django nor the web app.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

# No call leaves the federation (usage telemetry, update checks), and a run's dependencies are
# never pip-installed at run time: sites and the platform run only what their venv holds.
FLOWER_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
)
# Flower's scripts (flower-superlink, flower-supernode, …) come from this virtualenv.
VENV_BIN = Path(sys.executable).parent


def flower_env(flwr_home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (by default this process's environment) for a Flower process: FLOWER_SETTINGS,
    its state in `flwr_home`, and this virtualenv first on PATH, because Flower starts its
    helpers (flower-superexec, flwr-serverapp, flwr-clientapp) by name."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join(filter(None, [str(VENV_BIN), env.get("PATH")]))
    env["FLWR_HOME"] = str(flwr_home)
    env.update(FLOWER_SETTINGS)
    return env


def apply_flower_settings() -> None:
    """FLOWER_SETTINGS for this process and its children: Flower reads them when imported."""
    os.environ.update(FLOWER_SETTINGS)
