"""Schema changes keep what is stored: a running job's snapshot survives an upgrade and a
rollback of the migration that moved it from a JSON column to text; the start form's token
comes and goes with its jobs intact."""

import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from webapp.tests.factories import make_job

BEFORE = ("webapp", "0004_tracking_write_seconds")
AFTER = ("webapp", "0005_clients_status_text")
LATEST = ("webapp", "0006_job_start_token")  # where each test leaves the schema
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
        migrate(LATEST)


def insert_job(owner_id: int, token: str | None) -> None:
    """A row written as the migrated schema allows, not through today's model."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO webapp_trainingjob (owner_id, name, status, error_message, total_rounds,"
            " local_epochs, learning_rate, min_clients, current_round, model_config,"
            " clients_config, clients_status, tracking_version, flower_run_id, model_file,"
            " alert_webhook_url, tracking_write_seconds, start_token, created_at)"
            " VALUES (%s, 'j', 'pending', '', 1, 1, 0.01, 1, 0, '{}', '{}', '{}', 0, '', '', '',"
            " 0, %s, CURRENT_TIMESTAMP)",
            [owner_id, token],
        )


@pytest.mark.django_db(transaction=True)
def test_it_adds_the_start_token_unique_per_owner_and_removes_it_keeping_the_jobs(owner):
    job = make_job(owner, status="running")
    try:
        migrate(AFTER)
        assert stored_snapshot(job.pk) is not None

        migrate(LATEST)
        insert_job(owner.pk, "form-1")
        insert_job(owner.pk, None)
        insert_job(owner.pk, None)  # jobs started by scripts carry no token
        with pytest.raises(IntegrityError), transaction.atomic():
            insert_job(owner.pk, "form-1")

        migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM webapp_trainingjob")
            assert cursor.fetchone() == (4,)
    finally:
        migrate(LATEST)
