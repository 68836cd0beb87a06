"""The site's client API against raw, oversized and malformed requests: always a JSON 4xx,
never a row, never a hang; bound to loopback unless the site says otherwise."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.config import load_site_config
from clients.site import make_api_server
from clients.tests.helpers import write_breast_cancer_csv, write_site_toml

TOKEN = "hardening-token-123"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, int]]:
    write_breast_cancer_csv(tmp_path / "good.csv", rows=slice(0, 50))
    server = make_api_server(
        load_site_config(write_site_toml(tmp_path, {"good": "good.csv"}, token=TOKEN))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def send(address: tuple[str, int], data: bytes) -> tuple[int, dict]:
    """Send raw bytes; return the status and the JSON body of the answer."""
    with socket.create_connection(address, timeout=15) as sock:
        # The server may answer and close before it has read everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n")[0].decode()
    assert b"Content-Type: application/json" in head, head
    return int(status_line.split()[1]), json.loads(body)


AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()

RAW: dict[str, tuple[bytes, int, str]] = {
    "no token": (b"GET /datasets HTTP/1.1\r\nHost: x\r\n\r\n", 401, "missing Authorization"),
    "a wrong token": (
        b"GET /datasets HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n",
        401,
        "invalid token",
    ),
    "a prefix of the token": (
        f"GET /datasets HTTP/1.1\r\nAuthorization: Bearer {TOKEN[:-1]}\r\n\r\n".encode(),
        401,
        "invalid token",
    ),
    "basic auth instead of bearer": (
        b"GET /datasets HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
        401,
        "expected Authorization: Bearer <token>",
    ),
    "an empty bearer": (
        b"GET /datasets HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n",
        401,
        "expected Authorization: Bearer <token>",
    ),
    "an unknown method": (b"BREW /datasets HTTP/1.1\r\n" + AUTH + b"\r\n", 501, "Unsupported"),
    "a write method": (
        b"POST /datasets HTTP/1.1\r\n" + AUTH + b"Content-Length: 2\r\n\r\n{}",
        405,
        "method POST not allowed",
    ),
    "a path outside the API": (
        b"GET /../../etc/passwd HTTP/1.1\r\n" + AUTH + b"\r\n",
        404,
        "no such endpoint",
    ),
    "an absolute URL to elsewhere": (
        b"GET http://evil.example/datasets/x HTTP/1.1\r\n" + AUTH + b"\r\n",
        404,
        "no such endpoint",
    ),
    "a request line without a version": (b"GET\r\n\r\n", 400, "Bad request syntax"),
    "an HTTP/0.9 request": (b"GET /datasets\r\n\r\n", 400, "HTTP/0.9 requests are not supported"),
    "garbage": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, "Bad request syntax"),
    "an unknown HTTP version": (b"GET /health HTTP/9.9\r\n\r\n", 505, "Invalid HTTP version"),
    "a long URL": (
        b"GET /health?" + b"x" * 5000 + b" HTTP/1.1\r\n" + AUTH + b"\r\n",
        414,
        "URL too long",
    ),
    "a request line beyond 64 KiB": (
        b"GET /" + b"x" * 70_000 + b" HTTP/1.1\r\n\r\n",
        414,
        "Request-URI Too Long",
    ),
    "large headers": (
        b"GET /health HTTP/1.1\r\n" + AUTH + b"X-Pad: " + b"y" * 9000 + b"\r\n\r\n",
        431,
        "request headers too large",
    ),
    "a header line beyond 64 KiB": (
        b"GET /health HTTP/1.1\r\nX-Pad: " + b"y" * 70_000 + b"\r\n\r\n",
        431,
        "Line too long",
    ),
    "more than 100 headers": (
        b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n",
        431,
        "Too many headers",
    ),
}


@pytest.mark.parametrize(("data", "status", "error"), RAW.values(), ids=RAW.keys())
def test_it_answers_a_bad_request_with_a_clear_json_4xx(
    api: tuple[str, int], data: bytes, status: int, error: str
) -> None:
    answer_status, answer = send(api, data)

    assert answer_status == status
    assert error in answer["error"]


def test_it_still_serves_after_every_bad_request(api: tuple[str, int]) -> None:
    for data, _, _ in RAW.values():
        send(api, data)

    status, answer = send(api, b"GET /datasets HTTP/1.1\r\n" + AUTH + b"\r\n")

    assert status == 200
    assert answer["datasets"][0]["rows"] == 50


def test_it_binds_loopback_unless_the_site_says_otherwise(tmp_path: Path) -> None:
    default = load_site_config(write_site_toml(tmp_path, {}, token=TOKEN))
    assert default.host == "127.0.0.1"
    server = make_api_server(default)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()

    chosen = load_site_config(write_site_toml(tmp_path, {}, token=TOKEN, extra='host = "0.0.0.0"'))
    assert chosen.host == "0.0.0.0"
