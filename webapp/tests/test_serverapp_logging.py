"""The ServerApp's log (what `flwr log` shows) is readable: each message once, no line per
HTTP request Flower makes to the SuperLink."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What a job's ServerApp process does: `flwr-serverapp` has imported Flower (and its logger)
# before it loads the app, whose module sets Django up; then Flower, the job and httpx log.
SERVERAPP = """
import logging
from flwr.common.logger import log
import flwr.serverapp
import flower_app.fedtrack_app.server_app
log(logging.INFO, "flower says hello")
logging.getLogger("webapp.serverapp.job").info("the job says hello")
logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1:9091/x "HTTP/1.1 200 OK"')
logging.getLogger("httpcore.connection").debug("connect_tcp.started")
logging.getLogger("httpx").warning("httpx warns")
"""


def test_it_prints_each_serverapp_message_once_and_no_http_request_lines():
    result = subprocess.run(
        [sys.executable, "-c", SERVERAPP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr

    assert output.count("flower says hello") == 1, output
    assert output.count("the job says hello") == 1, output
    assert output.count("httpx warns") == 1, output
    assert "HTTP Request" not in output
    assert "connect_tcp" not in output
