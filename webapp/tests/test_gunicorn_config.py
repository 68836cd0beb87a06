"""The shipped production server config (config/gunicorn.conf.py) boots and serves the app."""

import http.client
import os

from devstack.processes import start_gunicorn, stop_process_group
from webapp.tests.conftest import free_port


def test_it_serves_the_app_with_the_shipped_gunicorn_config(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "gunicorn-config-test-only-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "FEDTRACK_VAR_DIR": str(tmp_path / "var"),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
    }
    process = start_gunicorn(env, port, log)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = []
        for _ in range(3):  # one connection for all three: the threaded workers keep it alive
            connection.request("GET", "/api/jobs/1/clients/")
            response = connection.getresponse()
            statuses.append((response.status, response.getheader("Content-Type")))
            response.read()
            assert response.getheader("Connection", "").lower() != "close"
        connection.close()
    finally:
        stop_process_group(process)

    assert statuses == [(401, "application/json")] * 3, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()  # post_worker_init's imports and gc.freeze()
