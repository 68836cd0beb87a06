"""The documentation stays true: its links resolve, its commands run, its API examples are the
recorded ones.

Commands: a ```console block preceded by `<!-- check -->` is run by bash from the project root
with the project's virtualenv first on PATH and a throw-away SQLite database; lines starting
with `$ ` are commands, the other lines are output that must appear, in order (`…` stands for
anything). `<!-- check: exit=N -->` expects that exit status from the last command, and
`<!-- check: cwd=tmp -->` runs in an empty temporary folder instead of the project. A console
block that cannot run here (it needs another host, root or a service) says why in
`<!-- no-check: reason -->`, so no block is skipped silently.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.tests import api_examples

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
_MARKER = re.compile(r"<!-- (check(?:: (?P<options>[\w=, ]+))?|no-check: [^>]+) -->$")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def _without_code(text: str) -> str:
    return _FENCE.sub("", text)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for _, title in _HEADING.findall(_without_code(path.read_text())):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def internal_links(path: Path) -> list[str]:
    return [
        link
        for link in _LINK.findall(_without_code(path.read_text()))
        if not re.match(r"^[a-z]+:", link)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_internal_link_resolves(doc):
    broken = []
    for link in internal_links(doc):
        target, _, anchor = link.partition("#")
        file = (doc.parent / target).resolve() if target else doc
        if not file.exists():
            broken.append(f"{link}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading #{anchor} in {file.name}")
    assert not broken, f"{doc.name}: {broken}"


def test_the_docs_link_each_other_from_the_readme():
    readme = set(internal_links(ROOT / "README.md"))
    for doc in ("docs/user-guide.md", "docs/api.md", "docs/troubleshooting.md"):
        assert doc in readme
    assert "docs/site-setup.md" in readme


def console_blocks(doc: Path) -> list[tuple[str, str, str]]:
    """(marker, block, where) for each ```console block."""
    text = doc.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        if match[1] != "console":
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text[: match.start()].count("\n") + 1
        blocks.append((before, match[2], f"{doc.name}:{line}"))
    return blocks


ALL_CONSOLE_BLOCKS = [block for doc in DOCS for block in console_blocks(doc)]
CHECKED = [b for b in ALL_CONSOLE_BLOCKS if b[0].startswith("<!-- check")]


def test_every_console_block_is_checked_or_says_why_not():
    unmarked = [where for marker, _, where in ALL_CONSOLE_BLOCKS if not _MARKER.match(marker)]
    assert not unmarked
    assert len(CHECKED) >= 5  # the marker is really used: a typo would skip everything


def _expected_in_order(expected: list[str], output: str) -> None:
    position = 0
    for line in expected:
        for part in filter(None, (p.strip() for p in line.split("…"))):
            found = output.find(part, position)
            assert found >= 0, f"expected {part!r} in the output after position {position}"
            position = found + len(part)


@pytest.mark.parametrize(("marker", "block", "where"), CHECKED, ids=[b[2] for b in CHECKED])
def test_every_checked_command_runs_as_shown(marker, block, where, tmp_path):
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    expected = [line for line in block.splitlines() if line.strip() and not line.startswith("$ ")]
    options = dict(
        option.strip().split("=", 1)
        for option in (_MARKER.match(marker)["options"] or "").split(",")
        if option.strip()
    )
    exit_status = int(options.get("exit", 0))
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "FEDTRACK_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "docs-check-only",
        "DOCS_TMP": str(tmp_path),
    }
    script = "\n".join(["set -e", *commands[:-1], "set +e", commands[-1], "exit $?"])
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path if options.get("cwd") == "tmp" else ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == exit_status, f"{where}: exit {result.returncode}\n{output}"
    _expected_in_order(expected, output)


def test_api_md_shows_exactly_the_recorded_examples():
    blocks = api_examples.doc_blocks(api_examples.API_DOC.read_text())
    assert len(blocks) >= 15
    for name, shown in blocks.items():
        recorded = api_examples.load(name)
        assert recorded is not None, f"api.md shows {name}, which no test records"
        assert shown == api_examples.render(recorded), (
            f"api.md's example {name} differs from docs/api-examples/{name}.json; rerun "
            "webapp/tests/test_openapi.py with FEDTRACK_UPDATE_API_EXAMPLES=1"
        )


def test_every_endpoint_of_the_openapi_document_is_in_api_md():
    import yaml

    from webapp.openapi import SCHEMA_PATH

    text = api_examples.API_DOC.read_text()
    for path in yaml.safe_load(SCHEMA_PATH.read_text())["paths"]:
        shown = re.sub(
            r"\{(\w+?)(_id)?\}", lambda m: "<id>" if m[1] == "job" else "<client_id>", path
        )
        assert f"`{shown}`" in text, f"{path} is not in docs/api.md's endpoint table"


def test_every_screenshot_stays_small():
    for image in (ROOT / "docs" / "img").glob("*.png"):
        assert image.stat().st_size < 300 * 1024, f"{image.name}: keep screenshots under 300 KB"
