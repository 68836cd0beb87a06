"""The shipped production server config (config/gunicorn.conf.py) boots and serves the app."""

import http.client
import os
import subprocess
import sys
from pathlib import Path

from webapp.localstack import http_ok, stop_process_group, wait_until
from webapp.tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_it_serves_the_app_with_the_shipped_gunicorn_config(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-c",
                str(ROOT / "config" / "gunicorn.conf.py"),
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "SECRET_KEY": "gunicorn-config-test-only-" + "x" * 40,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                "FEDTRACK_VAR_DIR": str(tmp_path / "var"),
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": "1",
                "GUNICORN_THREADS": "2",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/"), 60, "gunicorn", process
        )
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
