"""orjson behind JSONField and the API: the same JSON the standard library would give."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from webapp import jsoncodec
from webapp.models import TrainingJob
from webapp.tests.factories import make_job

SNAPSHOT = {
    "client_0001": {
        "connection_name": "Hospital Málaga 病院 <b>",
        "accuracy": 0.8125,
        "loss": 1e-9,
        "train_samples": 2**40,
        "node_id": "18446744073709551615",
        "status_reason": 'quote " backslash \\ newline \n',
        "last_seen": None,
        "nested": {"list": [1, 2.5, True, None, "x"]},
    }
}


@pytest.mark.django_db
def test_it_stores_and_reads_back_a_snapshot_unchanged(owner):
    job = make_job(owner)
    TrainingJob.objects.filter(pk=job.pk).update(clients_status=SNAPSHOT)

    assert TrainingJob.objects.get(pk=job.pk).clients_status == SNAPSHOT


def test_it_writes_what_the_standard_library_reads_back_the_same():
    value = {
        **SNAPSHOT,
        "when": datetime(2026, 11, 29, 3, 4, 5, 123456, tzinfo=UTC),
        "amount": Decimal("1.50"),
        "id": uuid.UUID(int=7),
        1: "an int key",
    }

    ours = json.loads(jsoncodec.dumps(value))

    assert ours == json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def test_it_decodes_like_the_standard_library():
    text = json.dumps(SNAPSHOT)

    assert json.loads(text, cls=jsoncodec.Decoder) == json.loads(text)


def test_it_refuses_invalid_json_like_the_standard_library():
    with pytest.raises(json.JSONDecodeError):
        json.loads("{not json", cls=jsoncodec.Decoder)


@pytest.mark.django_db
def test_it_keeps_the_snapshot_as_plain_text_on_every_database(owner):
    job = make_job(owner)
    TrainingJob.objects.filter(pk=job.pk).update(clients_status=SNAPSHOT)
    table = TrainingJob._meta.db_table

    with connection.cursor() as cursor:
        # As text, the column reads back exactly what the encoder wrote: no jsonb re-printing.
        cursor.execute(f"SELECT clients_status FROM {table} WHERE id = %s", [job.pk])
        (stored,) = cursor.fetchone()

    assert isinstance(stored, str)
    assert stored == jsoncodec.dumps(SNAPSHOT).decode()
    created = TrainingJob.objects.create(owner=owner, name="new", total_rounds=1)
    assert TrainingJob.objects.get(pk=created.pk).clients_status == {}


@pytest.mark.django_db
def test_it_writes_the_snapshot_inside_a_select_for_update_transaction(owner):
    job = make_job(owner)
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().only("clients_status").get(pk=job.pk)
        snapshot = locked.clients_status
        first = next(iter(snapshot))
        snapshot[first]["status"] = "training"
        TrainingJob.objects.filter(pk=job.pk).update(clients_status=snapshot)

    assert TrainingJob.objects.get(pk=job.pk).clients_status[first]["status"] == "training"
