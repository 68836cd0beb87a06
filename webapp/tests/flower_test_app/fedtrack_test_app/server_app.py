"""ServerApp entry point: the production one (Django set up first)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from webapp.server_process import app  # noqa: E402

__all__ = ["app"]
