"""Request/response examples of the JSON API, recorded by the test suite for docs/api.md.

test_openapi.py makes every documented request against a live server and compares each answer
with docs/api-examples/<name>.json; test_docs.py checks that docs/api.md shows exactly those
files. Values that change from run to run (ids, times, ports, client ids) are masked before the
comparison, so a committed example only goes stale when the API really changes. Then:

    FEDTRACK_UPDATE_API_EXAMPLES=1 .venv/bin/python -m pytest webapp/tests/test_openapi.py

rewrites the files and the examples in docs/api.md from the live answers.
"""

import json
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "docs" / "api-examples"
API_DOC = ROOT / "docs" / "api.md"
UPDATE = os.environ.get("FEDTRACK_UPDATE_API_EXAMPLES") == "1"
TOKEN_PLACEHOLDER = "$FEDTRACK_TOKEN"

VOLATILE_KEYS = {
    "id",
    "job_id",
    "connection_id",
    "port",
    "flower_run_id",
    "node_id",
    "created_at",
    "started_at",
    "finished_at",
    "last_seen",
}
_VOLATILE_TEXT = [
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?"), "<time>"),
    (re.compile(r"client_[0-9a-f]{8}"), "client_<id>"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"/jobs/\d+/"), "/jobs/<id>/"),
    (re.compile(r"connection id \d+"), "connection id <id>"),
]
_BLOCK = re.compile(r"(<!-- example: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)


def mask(value: Any, key: str | None = None) -> Any:
    """The example with everything that differs between two identical runs replaced."""
    if key in VOLATILE_KEYS and value is not None:
        return f"<{key}>"
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [mask(v) for v in value]
        if items and all(isinstance(v, dict) and "name" in v for v in items):
            # PostgreSQL's jsonb keeps a job's clients in the order of their random ids
            items.sort(key=lambda v: (str(v["name"]), str(v.get("dataset_name"))))
        return items
    if isinstance(value, str):
        for pattern, replacement in _VOLATILE_TEXT:
            value = pattern.sub(replacement, value)
        if "\r\n" in value:
            # A CSV download lists its rows by client id, which is random: compare them sorted
            header, *rows = value.split("\r\n")
            value = "\r\n".join([header, *sorted(rows)])
    return value


def example(method: str, path: str, auth: str | None, body: Any, status: int, answer: Any) -> dict:
    request: dict[str, Any] = {"method": method, "path": path}
    if auth is not None:
        request["headers"] = {"Authorization": auth}
    if body is not None:
        request["body"] = body
    return {"request": request, "response": {"status": status, "body": answer}}


def path_of(name: str) -> Path:
    return EXAMPLES_DIR / f"{name}.json"


def load(name: str) -> dict | None:
    path = path_of(name)
    return json.loads(path.read_text()) if path.exists() else None


def save(name: str, recorded: dict) -> None:
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    path_of(name).write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")


def render(recorded: dict) -> str:
    """How docs/api.md shows one example: the request, then the status and the JSON answer."""
    request, response = recorded["request"], recorded["response"]
    lines = [f"{request['method']} {request['path']}"]
    lines += [f"{k}: {v}" for k, v in request.get("headers", {}).items()]
    if "body" in request:
        lines += ["Content-Type: application/json", "", json.dumps(request["body"], indent=2)]
    shown = "```http\n" + "\n".join(lines) + "\n```\n\n" + f"Answer: **{response['status']}**\n\n"
    if isinstance(response["body"], str):  # a download (CSV), as the file reads
        return shown + "```csv\n" + response["body"].replace("\r\n", "\n") + "```\n"
    answer = json.dumps(response["body"], indent=2, ensure_ascii=False)
    return shown + f"```json\n{answer}\n```\n"


def doc_blocks(text: str) -> dict[str, str]:
    """The examples docs/api.md shows, by name."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(text)}


def rewrite_doc_blocks(text: str) -> str:
    def replace(match: re.Match) -> str:
        recorded = load(match["name"])
        body = render(recorded) if recorded is not None else match["body"]
        return match.group(1) + body + match.group(4)

    return _BLOCK.sub(replace, text)
