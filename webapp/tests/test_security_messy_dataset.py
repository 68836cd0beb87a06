"""A job that selects a site's unusable dataset fails to start with the site's own report."""

import threading

import pytest

from clients.config import load_site_config
from clients.site import make_api_server
from clients.tests.helpers import write_breast_cancer_csv, write_site_toml
from webapp import jobs
from webapp.models import Connection, TrainingJob

pytestmark = pytest.mark.django_db

TOKEN = "site-token"


@pytest.fixture
def site_with_a_messy_dataset(tmp_path, owner):
    write_breast_cancer_csv(tmp_path / "good.csv", rows=slice(0, 100))
    (tmp_path / "messy.csv").write_text(
        "age;weight;target\n" + "\n".join(f"{i};{i};{i % 2}" for i in range(20)) + "\n"
    )
    config = write_site_toml(tmp_path, {"good": "good.csv", "messy": "messy.csv"}, token=TOKEN)
    server = make_api_server(load_site_config(config))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    yield Connection.objects.create(
        owner=owner, name="Hospital Girona", ip=host, port=port, token=TOKEN
    )
    server.shutdown()
    server.server_close()


def request(connection: Connection, *datasets: str) -> jobs.JobRequest:
    return jobs.JobRequest(
        name="job",
        selections=[(connection.pk, name) for name in datasets],
        rounds=1,
        local_epochs=1,
        learning_rate=0.01,
        min_clients=1,
    )


def test_a_job_on_a_messy_dataset_fails_to_start_with_the_sites_report(
    site_with_a_messy_dataset, owner
):
    with pytest.raises(jobs.JobValidationError) as error:
        jobs.create_job(owner=owner, request=request(site_with_a_messy_dataset, "good", "messy"))

    assert str(error.value) == (
        "Hospital Girona: dataset 'messy' cannot be used: the header is a single column; "
        "the file looks semicolon-separated, but fields must be separated by commas"
    )
    assert not TrainingJob.objects.exists()


def test_the_start_page_shows_the_sites_report(site_with_a_messy_dataset, owner_client):
    response = owner_client.post(
        "/jobs/start/",
        {
            "name": "job",
            "datasets": [f"{site_with_a_messy_dataset.pk}::messy"],
            "rounds": 1,
            "local_epochs": 1,
            "learning_rate": 0.01,
            "min_clients": 1,
        },
        follow=True,
    )

    assert response.redirect_chain == [("/datasets/", 302)]  # back on the form, as typed
    assert "the file looks semicolon-separated" in response.content.decode()
    assert not TrainingJob.objects.exists()
