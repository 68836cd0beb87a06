"""Flower's own error replies come from node 1 (the SuperLink), not from the client's node:
they are mapped back to the client that owned the message."""

import time

import pytest
from flwr.app import ArrayRecord, Error, Message, MessageType, Metadata

from webapp import tracking
from webapp.models import ClientEvent
from webapp.server_fn.strategies import Pushed, update_client_tracking
from webapp.tests.factories import make_job

pytestmark = pytest.mark.django_db


def error_reply(code: int, reason: str, src_node_id: int = 1) -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="reply-1",
        src_node_id=src_node_id,
        dst_node_id=0,
        reply_to_message_id="sent-1",
        group_id="2",
        created_at=time.time(),
        ttl=60.0,
        message_type=MessageType.TRAIN,
    )
    return Message(metadata=metadata, error=Error(code, reason))


def test_it_pins_a_superlink_error_reply_on_the_client_that_owned_the_message(owner):
    job = make_job(owner)
    victim, other = list(job.clients_status)
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(victim, 2)
    tracker.training(other, 2)
    sent = Pushed(client_id=victim, node_id=4242, server_round=2, pushed_at=0.0)

    result = update_client_tracking(
        tracker, sent, error_reply(5, "Node unavailable"), ArrayRecord(), 3.0
    )
    tracker.flush()

    assert result is None
    job.refresh_from_db()
    assert job.clients_status[victim]["status"] == "error"
    assert job.clients_status[victim]["status_reason"] == "Flower error 5: Node unavailable"
    assert job.clients_status[other]["status"] == "training"  # the others go on
    event = ClientEvent.objects.get(job=job, client_id=victim, new_status="error")
    assert (event.round, event.old_status) == (2, "training")
