"""Every ClientTracker method, from every stored status: what it writes is a move the
transition table (webapp.tracking.status.TRANSITIONS) allows, and every move the table allows
is one some method writes."""

from collections.abc import Callable

import pytest

from webapp import tracking
from webapp.models import ClientEvent, TrainingJob
from webapp.tests.factories import make_job
from webapp.tracking.status import TRANSITIONS, ClientStatus

pytestmark = pytest.mark.django_db

S = ClientStatus
REPORT = tracking.RoundReport(0.9, 0.3, 0.2, 80, 20)
AS_STORED = "the reason stored with the status"

# method name -> (the call, the status it asks for)
METHODS: dict[str, tuple[Callable[[tracking.ClientTracker, str], None], ClientStatus]] = {
    "connected": (lambda t, c: t.connected(c, 7, 1), S.CONNECTED),
    "training": (lambda t, c: t.training(c, 1), S.TRAINING),
    "reported": (lambda t, c: t.reported(c, 1, REPORT, 2.0), S.REPORTED),
    "failed": (lambda t, c: t.failed(c, 1, "the site's dataset changed"), S.ERROR),
    "lost": (lambda t, c: t.lost(c, 1, "node 7 left the SuperLink"), S.OFFLINE),
    "finish_clients(completed)": (lambda t, c: t.finish_clients(S.COMPLETED, 1), S.COMPLETED),
    # A client that did not report in the job's final round is dropped, not completed.
    "finish_clients(dropped)": (
        lambda t, c: (t.round_ended(1), t.finish_clients(S.COMPLETED, 1)),
        S.DROPPED,
    ),
    "finish_clients(stopped)": (lambda t, c: t.finish_clients(S.STOPPED, 1, "stopped"), S.STOPPED),
}
TABLE = {(old, new) for old, moves in TRANSITIONS.items() for new in moves}


def written_move(owner, stored: ClientStatus, method: str) -> tuple[str, str] | None:
    """The move the method wrote for a client stored as `stored`, if any, checked against
    the events it wrote."""
    job = make_job(owner, status="running")
    client_id = next(iter(job.clients_status))
    job.clients_status[client_id].update(status=stored, status_reason=AS_STORED)
    job.save(update_fields=["clients_status"])
    tracker = tracking.ClientTracker(job.pk)
    call, _ = METHODS[method]

    call(tracker, client_id)
    tracker.flush()

    after = TrainingJob.objects.get(pk=job.pk).clients_status[client_id]
    events = set(
        ClientEvent.objects.filter(job=job, client_id=client_id).values_list(
            "old_status", "new_status"
        )
    )
    # Writing a status always rewrites its reason, so a same-status move shows too.
    if after["status"] == stored and after["status_reason"] == AS_STORED:
        assert not events
        return None
    move = (stored.value, after["status"])
    assert events <= {move}
    return move


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stored", list(TRANSITIONS))
def test_it_writes_a_move_only_if_the_table_allows_it(owner, caplog, stored, method):
    _, asked = METHODS[method]
    allowed = asked in TRANSITIONS[stored]

    move = written_move(owner, stored, method)

    assert move == ((stored, asked) if allowed else None)
    if not allowed and method in ("training", "reported", "failed", "lost"):
        assert f"cannot move from {stored} to {asked}; not written" in caplog.text


def test_every_move_in_the_table_is_one_a_tracker_method_writes(owner):
    written = {
        move
        for stored in TRANSITIONS
        for method in METHODS
        if (move := written_move(owner, stored, method)) is not None
    }

    assert written == TABLE


def test_it_refuses_to_end_clients_with_a_status_that_is_not_an_outcome(owner):
    job = make_job(owner, status="running")
    tracker = tracking.ClientTracker(job.pk)

    with pytest.raises(ValueError, match="'error' is not an outcome"):
        tracker.finish_clients(S.ERROR, 1)

    assert not tracker.flush()


def test_it_writes_nothing_for_a_client_that_is_not_in_the_job(owner, caplog):
    job = make_job(owner, status="running")
    tracker = tracking.ClientTracker(job.pk)

    tracker.failed("client_deadbeef", 1, "who is this?")

    assert not tracker.flush()
    assert "client client_deadbeef cannot move from (not in the job) to error" in caplog.text
