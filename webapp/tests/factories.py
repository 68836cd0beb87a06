"""Jobs in a known state, built through the tracking writer like the ServerApp builds them."""

from webapp import tracking
from webapp.jobs import store_job
from webapp.models import Connection, TrainingJob


def make_job(owner, sites: list[tuple[str, str]] | None = None, **fields) -> TrainingJob:
    """A job with one client per (site name, dataset name), as start_training stores it."""
    sites = sites or [("Hospital Barcelona", "breast_cancer"), ("Hospital Madrid", "breast_cancer")]
    connections = [
        Connection.objects.get_or_create(
            owner=owner, name=name, defaults={"ip": "127.0.0.1", "port": 5000 + i, "token": name}
        )[0]
        for i, (name, _) in enumerate(sites)
    ]
    defaults = {
        "name": "test job",
        "total_rounds": 3,
        "min_clients": 1,
        "model_config": {
            "feature_names": ["a", "b"],
            "classes": ["0", "1"],
            "target": "y",
            "hidden_size": 8,
        },
    }
    clients = [(c, dataset) for c, (_, dataset) in zip(connections, sites, strict=True)]
    return store_job(owner, clients, **{**defaults, **fields})


def report(
    job: TrainingJob, client_id: str, server_round: int, accuracy: float, loss: float
) -> None:
    tracker = tracking.ClientTracker(job.pk)
    tracker.training(client_id, server_round)
    tracker.reported(
        client_id,
        server_round,
        tracking.RoundReport(
            accuracy=accuracy, loss=loss, train_loss=loss, train_samples=80, test_samples=20
        ),
        response_time=2.5,
    )
    tracker.flush()
