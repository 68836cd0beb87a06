"""Schema changes keep what is stored: a running job's snapshot survives an upgrade and a
rollback of the migration that moved it from a JSON column to text."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from webapp.tests.factories import make_job

BEFORE = ("webapp", "0004_tracking_write_seconds")
AFTER = ("webapp", "0005_clients_status_text")
SNAPSHOT = {"client_0001": {"status": "training", "accuracy": 0.8125, "connection_name": "Málaga"}}


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def stored_snapshot(job_id: int):
    with connection.cursor() as cursor:
        cursor.execute("SELECT clients_status FROM webapp_trainingjob WHERE id = %s", [job_id])
        (value,) = cursor.fetchone()
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.django_db(transaction=True)
def test_it_keeps_a_jobs_snapshot_through_the_text_column_migration_and_back(owner):
    job = make_job(owner, status="running")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE webapp_trainingjob SET clients_status = %s WHERE id = %s",
            [json.dumps(SNAPSHOT), job.pk],
        )
    try:
        migrate(BEFORE)
        assert stored_snapshot(job.pk) == SNAPSHOT

        migrate(AFTER)
        assert stored_snapshot(job.pk) == SNAPSHOT
    finally:
        migrate(AFTER)
