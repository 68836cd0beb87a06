"""The JSON shapes the API answers with (docs/api.md; the OpenAPI document's schemas)."""

from datetime import datetime
from typing import Any

from webapp import tracking
from webapp.models import Connection, TrainingJob
from webapp.sites import SiteView


def job_json(job: TrainingJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "current_round": job.current_round,
        "total_rounds": job.total_rounds,
        "local_epochs": job.local_epochs,
        "learning_rate": job.learning_rate,
        "min_clients": job.min_clients,
        "error_message": job.error_message,
        "flower_run_id": job.flower_run_id or None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "model_available": bool(job.model_file) and job.status == TrainingJob.Status.COMPLETED,
    }


def clients_snapshot(job: TrainingJob, now: datetime) -> dict[str, Any]:
    """The dashboard's poll: every client's row, the overview cards, the job's progress."""
    rows = tracking.client_rows(job, now)
    return {
        "success": True,
        "clients": rows,
        "overview_stats": tracking.overview_stats(rows),
        "job": {
            "id": job.pk,
            "status": job.status,
            "current_round": job.current_round,
            "total_rounds": job.total_rounds,
        },
    }


def event_json(
    created_at: datetime, round_: int, old_status: str, new_status: str, message: str
) -> dict[str, Any]:
    return {
        "time": created_at.isoformat(),
        "round": round_,
        "old_status": old_status,
        "new_status": new_status,
        "message": message,
    }


def connection_json(connection: Connection) -> dict[str, Any]:
    """A connection as registered; its token is never shown."""
    return {
        "id": connection.pk,
        "name": connection.name,
        "ip": connection.ip,
        "port": connection.port,
    }


def site_json(site: SiteView) -> dict[str, Any]:
    """A connection with what its site answered just now."""
    return {
        **connection_json(site.connection),
        "reachable": site.reachable,
        "error": site.error or None,
        "datasets": site.datasets,
    }
