"""The optional alert hook: a JSON POST to a job's webhook (or ALERT_WEBHOOK_URL) when a client
goes offline or the job is about to fall under `min_clients`.

Sent from a background thread with a short timeout: an unreachable receiver is logged and never
slows or fails the job.
"""

import logging
import threading
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

CLIENT_OFFLINE = "client_offline"
BELOW_MIN_CLIENTS_RISK = "min_clients_at_risk"


def webhook_url(job_url: str) -> str:
    return job_url or settings.ALERT_WEBHOOK_URL


def _post(url: str, payload: dict[str, Any]) -> None:
    try:
        response = requests.post(url, json=payload, timeout=settings.ALERT_WEBHOOK_TIMEOUT)
        if response.status_code >= 400:
            logger.warning("alert webhook answered HTTP %s", response.status_code)
    except requests.RequestException as exc:
        logger.warning("alert webhook unreachable: %s", type(exc).__name__)


def send(
    url: str, event: str, job_id: int, job_name: str, **details: Any
) -> threading.Thread | None:
    """POST `{"event", "job_id", "job_name", "time", ...details}`; returns the sending thread."""
    if not url:
        return None
    payload = {
        "event": event,
        "job_id": job_id,
        "job_name": job_name,
        "time": timezone.now().isoformat(),
        **details,
    }
    thread = threading.Thread(target=_post, args=(url, payload), daemon=True, name="alert")
    thread.start()
    return thread
