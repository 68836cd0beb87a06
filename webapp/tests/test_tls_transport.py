"""Production transport on loopback: a SuperLink with TLS and SuperNode authentication, two
sites with registered keys running a real job, and a SuperNode with an unknown key refused.

Certificates and keys are generated here (a CA, the SuperLink's certificate for 127.0.0.1,
one EC key pair per SuperNode), as docs/production.md describes for a real deployment.
"""

import datetime
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.management import call_command

from clients.config import load_site_config
from clients.site import supernode_command, supernode_env
from devstack.processes import TlsFiles, stop_process_group
from webapp import flower
from webapp.tests.conftest import (
    federation_stack,
    free_port,
    register,
    submit_job,
    wait_for_job,
    write_test_sites,
)

pytestmark = [pytest.mark.flower, pytest.mark.once, pytest.mark.django_db(transaction=True)]


def write_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedtrack test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid["not_valid_before"])
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid["not_valid_before"])
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.pem", folder / "superlink.pem", folder / "superlink.key")
    files.ca_certfile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def write_supernode_key(path: Path) -> Path:
    """An EC key pair as `ssh-keygen -t ecdsa -b 384` writes it: `path` and `path.pub`."""
    key = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = path.with_suffix(".pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    return public


def use_secure_superlink(config_path: Path, address: str, ca: Path, auth_key: Path) -> None:
    """Turn a demo site.toml's `superlink = "…"` into the production [superlink] table."""
    lines = [
        line for line in config_path.read_text().splitlines() if not line.startswith("superlink =")
    ]
    lines += [
        "",
        "[superlink]",
        f'address = "{address}"',
        f'root_certificates = "{ca}"',
        f'auth_key = "{auth_key}"',
    ]
    config_path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def secure_superlink(tmp_path, settings):
    tls = write_tls_files(tmp_path)
    port = free_port()
    stack = federation_stack(tmp_path / "stack", {"JOB_NODE_WAIT_TIMEOUT": "60"})
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{port}"
    settings.FLOWER_INSECURE = False
    settings.FLOWER_ROOT_CERTIFICATES = str(tls.ca_certfile)
    try:
        stack.start_superlink(port, tls=tls, supernode_auth=True)
        yield stack, tls
    finally:
        stack.stop()


def test_a_job_runs_over_tls_with_authenticated_supernodes_and_an_unknown_key_is_refused(
    secure_superlink, tmp_path, owner, owner_token, capsys
):
    stack, tls = secure_superlink
    address = settings.FLOWER_SUPERLINK
    sites = write_test_sites(tmp_path / "sites", address)
    registered: dict[str, int] = {}
    for site in sites:
        public_key = write_supernode_key(site.config_path.parent / "supernode_key")
        use_secure_superlink(site.config_path, address, tls.ca_certfile, public_key.with_suffix(""))
    for site in sites[:2]:  # the third site's key is never registered
        call_command(
            "register_supernode",
            str(site.config_path.parent / "supernode_key.pub"),
            name=site.name,
        )
        registered[site.name] = int(capsys.readouterr().out.split()[-1])

    # A SuperNode whose key the SuperLink does not know is refused (Flower's exit code 305,
    # reported in its log; the process itself exits with 1).
    intruder = load_site_config(sites[2].config_path)
    intruder.flwr_home.mkdir(parents=True, exist_ok=True)
    log_path = intruder.flwr_home / "refused.log"
    with log_path.open("wb") as log:
        refused = subprocess.Popen(
            supernode_command(intruder),
            env=supernode_env(intruder),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert refused.wait(timeout=60) != 0
    finally:
        stop_process_group(refused)
    refusal = log_path.read_text()
    assert "Exit Code: 305" in refusal
    assert "Failed to activate SuperNode" in refusal

    for site in sites[:2]:
        stack.wait_for_site(site, stack.start_site(site))
    connections = register(owner, sites[:2])
    job_id = submit_job(owner_token, connections, name="over TLS", rounds=1, min_clients=2)

    job, _ = wait_for_job(job_id)

    assert job.status == "completed", job.error_message
    # Registered keys give stable node ids: each client ran on its site's registered node.
    assert {
        entry["connection_name"]: int(entry["node_id"]) for entry in job.clients_status.values()
    } == registered
    nodes = {node.node_id: node for node in flower.list_nodes()}
    assert set(nodes) == set(registered.values())  # the intruder never became a node
    assert {nodes[n].name for n in registered.values()} == set(registered)


def test_the_control_api_refuses_plain_http_and_unknown_certificates(
    secure_superlink, tmp_path, settings
):
    settings.FLOWER_INSECURE = True
    with pytest.raises(flower.FlowerError):
        flower.list_nodes()

    settings.FLOWER_INSECURE = False
    settings.FLOWER_ROOT_CERTIFICATES = str(write_tls_files(tmp_path / "other").ca_certfile)
    with pytest.raises(flower.FlowerError, match="CERTIFICATE_VERIFY_FAILED"):
        flower.list_nodes()
