"""Production settings: `manage.py check --deploy` is clean with the documented variables
(docs/production.md), and DEBUG is off unless asked for."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Exactly the variables docs/production.md lists for the web app.
PRODUCTION_ENV = {
    "SECRET_KEY": "k2Vx9!qLr7#sT0pWz4&uYb8@nMc1^dEf6*hJg3$aQw5%eRt-not-a-real-secret-0123456789",
    "ALLOWED_HOSTS": "fedtrack.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://fedtrack.example.org",
    "HTTPS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "TRUST_X_FORWARDED_PROTO": "1",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DEBUG"}
    base.pop("DJANGO_SETTINGS_MODULE", None)  # the production settings, not the tests'
    base.pop("DATABASE_URL", None)  # the default database, as next to the demo; tests set it
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_passes_without_warnings_with_the_documented_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deploy_check_warns_without_them():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={"SECRET_KEY": "short", "DEBUG": "1"}
    )

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W009", "security.W018"):
        assert warning in result.stderr


def test_debug_is_off_unless_asked_for():
    show = "from django.conf import settings; print(settings.DEBUG)"

    assert manage("shell", "--no-imports", "-c", show, env=PRODUCTION_ENV).stdout.strip() == "False"


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}

    # An empty var/: this checkout's own may hold the demo's secret.
    result = manage("check", env={**env, "FEDTRACK_VAR_DIR": str(tmp_path)})

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


SHOW_SECRET = "from django.conf import settings; print(settings.SECRET_KEY)"


def demo_var_dir(tmp_path: Path) -> Path:
    """A var/ where `manage.py demo` has run: its secret written once."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "secret_key").write_text("the-demos-own-secret\n")
    return tmp_path


def test_next_to_the_demo_manage_py_uses_the_demos_secret(tmp_path):
    env = {"FEDTRACK_VAR_DIR": str(demo_var_dir(tmp_path))}  # no DEBUG, no SECRET_KEY

    result = manage("shell", "--no-imports", "-c", SHOW_SECRET, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the-demos-own-secret"


def test_the_demos_secret_is_not_used_with_another_database(tmp_path):
    env = {
        "FEDTRACK_VAR_DIR": str(demo_var_dir(tmp_path)),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
    }

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_given_secret_key_wins_over_the_demos(tmp_path):
    env = {"FEDTRACK_VAR_DIR": str(demo_var_dir(tmp_path)), **PRODUCTION_ENV}

    result = manage("shell", "--no-imports", "-c", SHOW_SECRET, env=env)

    assert result.stdout.strip() == PRODUCTION_ENV["SECRET_KEY"]


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text(PRODUCTION_ENV["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    show = "from django.conf import settings; print(settings.SECRET_KEY)"

    result = manage(
        "shell", "--no-imports", "-c", show, env={**env, "SECRET_KEY_FILE": str(secret)}
    )

    assert result.stdout.strip() == PRODUCTION_ENV["SECRET_KEY"]


def test_flower_in_a_web_process_sends_no_telemetry_even_when_the_environment_asks_for_it():
    show = (
        "import os; from flwr.supercore import telemetry; "
        "print(telemetry.FLWR_TELEMETRY_ENABLED, os.environ['FLWR_DISABLE_UPDATE_CHECK'])"
    )
    env = {**PRODUCTION_ENV, "FLWR_TELEMETRY_ENABLED": "1", "FLWR_DISABLE_UPDATE_CHECK": "0"}

    assert manage("shell", "--no-imports", "-c", show, env=env).stdout.strip() == "0 1"
