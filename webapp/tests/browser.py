"""Headless Chromium for the page tests: Debian's package, driven by Playwright, logged in as
the `owner` fixture's user against pytest-django's live server."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# For a test module's `pytestmark`: a browser test, on a database its live server can see.
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium package is not installed (CI installs it)",
    ),
]


def browser_test(test):
    """BROWSER_TEST's marks on one test of a module that has other tests."""
    for mark in reversed(BROWSER_TEST):
        test = mark(test)
    return test


@contextmanager
def logged_in_page(live_server, monkeypatch, **context_options: Any) -> Iterator[Any]:
    """A page logged in as alice, on /jobs/. Fails the test if any page script raised."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context(**context_options).new_page()
        page.set_default_timeout(10_000)
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/jobs/")
        yield page
        page.goto("about:blank")  # stop polling before the live server and database go away
        browser.close()
    assert script_errors == []
