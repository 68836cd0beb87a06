"""The only client of the SuperLink's Control API (submit, stop, inspect runs and nodes).

Flower 1.42 speaks protobuf over HTTP; we use Flower's own client classes rather than shelling
out to `flwr run`. Every failure becomes a `FlowerError` with a sentence a user can act on.
"""

import hashlib
import ssl
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from flwr.cli.build import build_fab_from_disk
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import (  # pylint: disable=E0611
    ListNodesRequest,
    ListRunsRequest,
    RegisterNodeRequest,
    StartRunRequest,
    StopRunRequest,
)
from flwr.supercore.control.control_http_client import ControlHttpClient
from flwr.supercore.fab import Fab
from flwr.supercore.interceptors.http.runtime_version import RuntimeVersionHttpInterceptor


class FlowerError(Exception):
    """The SuperLink could not be reached or refused a request."""


@dataclass(frozen=True)
class RunStatus:
    status: str  # "pending" | "starting" | "running" | "finished"
    sub_status: str  # for finished runs: "completed" | "failed" | "stopped"
    details: str

    @property
    def finished(self) -> bool:
        return self.status == "finished"


@cache
def _fab(app_dir: Path) -> Fab:
    fab_bytes = build_fab_from_disk(app_dir)
    return Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})


def _verify() -> ssl.SSLContext | bool:
    """How to check the SuperLink's certificate: the configured CA bundle, else the system's."""
    if settings.FLOWER_INSECURE:
        return False
    try:
        return ssl.create_default_context(cafile=settings.FLOWER_ROOT_CERTIFICATES or None)
    except (OSError, ssl.SSLError) as exc:
        raise FlowerError(
            f"cannot load FLOWER_ROOT_CERTIFICATES={settings.FLOWER_ROOT_CERTIFICATES!r}: {exc}"
        ) from exc


def _client() -> ControlHttpClient:
    scheme = "http" if settings.FLOWER_INSECURE else "https"
    return ControlHttpClient(
        f"{scheme}://{settings.FLOWER_SUPERLINK}",
        interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr CLI")],
        verify=_verify(),
        timeout=settings.FLOWER_CONTROL_TIMEOUT,
    )


def _call(action: str, request, method: str):
    try:
        with _client() as client:
            return getattr(client, method)(request)
    except Exception as exc:  # httpx, protobuf and Flower's own errors alike
        raise FlowerError(
            f"could not {action} on the Flower SuperLink at {settings.FLOWER_SUPERLINK}: "
            f"{exc or type(exc).__name__}"
        ) from exc


def submit_run(job_id: int, extra_config: dict[str, int | float | str | bool] | None = None) -> int:
    """Start a Flower run of the platform's app for one job; returns the Flower run id."""
    try:
        fab = _fab(Path(settings.FLOWER_APP_DIR).resolve())
    except Exception as exc:
        raise FlowerError(
            f"could not build the Flower app at {settings.FLOWER_APP_DIR}: {exc}"
        ) from exc
    request = StartRunRequest(
        fab=fab_to_proto(fab),
        override_config=user_config_to_proto({"job-id": job_id, **(extra_config or {})}),
        federation="",  # the default federation: the open-source SuperLink has no others
    )
    return int(_call("start a run", request, "StartRun").run_id)


def stop_run(run_id: int) -> bool:
    return bool(_call("stop the run", StopRunRequest(run_id=run_id), "StopRun").success)


def run_status(run_id: int) -> RunStatus | None:
    """The run's status on the SuperLink, or None if it does not know the run."""
    runs = _call("list runs", ListRunsRequest(run_id=run_id), "ListRuns").run_dict
    run = runs.get(run_id)
    if run is None:
        return None
    return RunStatus(run.status.status, run.status.sub_status, run.status.details)


def list_nodes() -> list:
    return list(_call("list nodes", ListNodesRequest(), "ListNodes").nodes_info)


def register_supernode(public_key: bytes, name: str) -> int:
    """Register a site's SuperNode key (SuperLink with --enable-supernode-auth); its node id.

    `public_key` is the OpenSSH `.pub` (what `ssh-keygen -t ecdsa` writes) or PEM text.
    Equivalent to `flwr supernode register KEY.pub CONNECTION --name NAME`.
    """
    try:
        if public_key.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(public_key)
        else:
            key = serialization.load_ssh_public_key(public_key)
    except (ValueError, TypeError) as exc:
        raise FlowerError(f"not a public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise FlowerError("SuperNode keys must be elliptic-curve (ssh-keygen -t ecdsa) keys")
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    request = RegisterNodeRequest(public_key=pem, name=name)
    node_id = int(_call("register the SuperNode", request, "RegisterNode").node_id)
    if not node_id:
        raise FlowerError("the SuperLink did not register the SuperNode")
    return node_id
