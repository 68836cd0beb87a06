"""How the web app's Control API client is told to trust the SuperLink (no SuperLink needed:
these fail before connecting, or connect to a closed loopback port)."""

import ssl

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from webapp import flower
from webapp.tests.conftest import free_port


def test_it_says_when_the_root_certificates_cannot_be_loaded(settings, tmp_path):
    settings.FLOWER_INSECURE = False
    settings.FLOWER_ROOT_CERTIFICATES = str(tmp_path / "missing-ca.pem")

    with pytest.raises(flower.FlowerError, match="cannot load FLOWER_ROOT_CERTIFICATES="):
        flower.list_nodes()


def test_it_verifies_against_the_configured_ca_or_the_systems(settings, tmp_path):
    settings.FLOWER_INSECURE = False
    settings.FLOWER_ROOT_CERTIFICATES = ""
    assert isinstance(flower._verify(), ssl.SSLContext)

    settings.FLOWER_INSECURE = True
    assert flower._verify() is False


def test_it_refuses_a_key_that_is_not_an_ec_public_key(settings):
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"

    with pytest.raises(flower.FlowerError, match="not a public key"):
        flower.register_supernode(b"ssh-ed25519 garbage", "site")


def test_it_refuses_an_rsa_key_before_asking_the_superlink(settings):
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    openssh = rsa_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )

    with pytest.raises(flower.FlowerError, match="must be elliptic-curve"):
        flower.register_supernode(openssh, "site")
