"""A demo restart keeps browser sessions: the same secret, and the user `demo` keeps its
password hash (a session is bound to both)."""

import pytest
from django.contrib.auth import get_user_model

from webapp.management.commands.demo import Command


@pytest.mark.django_db
def test_it_keeps_the_demo_users_password_hash_across_restarts(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-test-password")
    Command()._demo_user()
    first = get_user_model().objects.get(username="demo").password

    Command()._demo_user()  # the next `make demo`

    user = get_user_model().objects.get(username="demo")
    assert user.password == first
    assert user.check_password("demo-test-password")


@pytest.mark.django_db
def test_a_new_demo_password_replaces_the_old_one(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "first-password")
    Command()._demo_user()
    monkeypatch.setenv("DEMO_PASSWORD", "second-password")
    Command()._demo_user()

    assert get_user_model().objects.get(username="demo").check_password("second-password")


def test_it_writes_its_secret_once_and_gives_it_to_its_processes(tmp_path, settings, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    settings.DEMO_SECRET_KEY_FILE = tmp_path / "demo" / "secret_key"

    env = Command()._secret_env()
    secret = settings.DEMO_SECRET_KEY_FILE.read_text()

    assert env == {"SECRET_KEY_FILE": str(settings.DEMO_SECRET_KEY_FILE)}
    assert len(secret.strip()) >= 50
    assert settings.DEMO_SECRET_KEY_FILE.stat().st_mode & 0o777 == 0o600
    assert Command()._secret_env() == env  # the next start: the same secret
    assert settings.DEMO_SECRET_KEY_FILE.read_text() == secret


def test_a_secret_key_in_the_environment_wins(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "given")
    settings.DEMO_SECRET_KEY_FILE = tmp_path / "demo" / "secret_key"

    assert Command()._secret_env() == {}
    assert not settings.DEMO_SECRET_KEY_FILE.exists()
