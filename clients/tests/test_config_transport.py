"""site.toml's production transport: a [superlink] table with TLS and SuperNode auth files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from clients.config import SiteConfigError, load_site_config
from clients.site import supernode_command

BASE = 'name = "Hospital Girona"\ntoken = "tok"\nsupernode_port = 9100\n'


def write(tmp_path: Path, superlink: str) -> Path:
    (tmp_path / "ca.pem").write_text("CA")
    (tmp_path / "node_key").write_text("KEY")
    path = tmp_path / "site.toml"
    path.write_text(BASE + superlink, encoding="utf-8")
    return path


def test_a_plain_superlink_address_keeps_the_insecure_transport(tmp_path: Path) -> None:
    cfg = load_site_config(write(tmp_path, 'superlink = "127.0.0.1:9093"\n'))

    assert (cfg.root_certificates, cfg.auth_key) == (None, None)
    assert "--insecure" in supernode_command(cfg)


def test_a_superlink_table_gives_tls_and_supernode_authentication(tmp_path: Path) -> None:
    cfg = load_site_config(
        write(
            tmp_path,
            '[superlink]\naddress = "fl.example.org:9093"\n'
            'root_certificates = "ca.pem"\nauth_key = "node_key"\n',
        )
    )

    assert cfg.superlink == "fl.example.org:9093"
    assert supernode_command(cfg)[:6] == [
        str(Path(sys.executable).parent / "flower-supernode"),
        "--root-certificates",
        str(tmp_path / "ca.pem"),
        "--auth-supernode-private-key",
        str(tmp_path / "node_key"),
        "--superlink",
    ]
    assert "--insecure" not in supernode_command(cfg)


@pytest.mark.parametrize(
    ("superlink", "error"),
    [
        ("superlink = 5\n", "key 'superlink': expected HOST:PORT or a table, got int"),
        ('[superlink]\nroot_certificates = "ca.pem"\n', "key 'superlink.address'"),
        ('[superlink]\naddress = "h:1"\nca = "ca.pem"\n', "[superlink]: unknown key(s): ca"),
        (
            '[superlink]\naddress = "h:1"\nroot_certificates = "nope.pem"\n',
            "key 'superlink.root_certificates': no such file",
        ),
        (
            '[superlink]\naddress = "h:1"\nauth_key = "node_key"\n',
            "key 'superlink.auth_key': needs root_certificates (TLS) too",
        ),
        ('[superlink]\naddress = "h"\n', "key 'superlink': expected HOST:PORT, got 'h'"),
    ],
)
def test_it_says_what_is_wrong_with_the_superlink_table(
    tmp_path: Path, superlink: str, error: str
) -> None:
    with pytest.raises(SiteConfigError) as excinfo:
        load_site_config(write(tmp_path, superlink))
    assert error in str(excinfo.value)
