"""The start form of datasets.html: one job per form however often it is sent, and a refused
form back at the datasets page with what was typed and each error by its field's label."""

import dataclasses
import re

import pytest

from webapp import jobs
from webapp.models import TrainingJob
from webapp.tests.conftest import free_port, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_superlink(settings) -> None:
    """Nothing listens there: each job started ends `error`, which is enough to count them."""
    settings.FLOWER_SUPERLINK = f"127.0.0.1:{free_port()}"
    settings.FLOWER_CONTROL_TIMEOUT = 2


def start_token(page: str) -> str:
    match = re.search(r'name="start_token" value="([^"]+)"', page)
    assert match, "the start form carries no one-time token"
    return match.group(1)


def form_data(connections, token: str, **overrides) -> dict:
    return {
        "name": "from the form",
        "datasets": [f"{c.pk}::breast_cancer" for c in connections[:2]],
        "rounds": 2,
        "local_epochs": 1,
        "learning_rate": 0.01,
        "min_clients": 2,
        "start_token": token,
        **overrides,
    }


def test_it_gives_each_rendered_form_its_own_token(owner, owner_client):
    first = start_token(owner_client.get("/datasets/").content.decode())
    second = start_token(owner_client.get("/datasets/").content.decode())

    assert first != second


def test_it_opens_the_job_already_started_when_the_form_is_sent_again(
    owner, owner_client, site_apis, no_superlink
):
    connections = register(owner, site_apis)
    token = start_token(owner_client.get("/datasets/").content.decode())

    first = owner_client.post("/jobs/start/", form_data(connections, token))
    again = owner_client.post("/jobs/start/", form_data(connections, token), follow=True)

    job = TrainingJob.objects.get()
    assert first["Location"] == f"/jobs/{job.pk}/"
    assert again.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert "This job was already started from this form" in again.content.decode()


def test_it_starts_one_job_when_two_posts_of_one_form_race(
    owner, site_apis, no_superlink, monkeypatch
):
    """The second post passes the token check while the first is still asking the sites,
    then loses at the unique constraint and is answered with the first one's job."""
    connections = register(owner, site_apis)
    request = jobs.JobRequest(
        name="raced",
        selections=[(c.pk, "breast_cancer") for c in connections[:2]],
        rounds=1,
        local_epochs=1,
        learning_rate=0.01,
        min_clients=2,
    )
    real_fetch = jobs.fetch_datasets
    other: list[TrainingJob] = []

    def fetch_while_the_other_post_commits(connection):
        if not other:
            other.append(None)  # the other post's own fetches go straight through
            other[0] = jobs.create_job(owner=owner, request=request, start_token="tok")
        return real_fetch(connection)

    monkeypatch.setattr(jobs, "fetch_datasets", fetch_while_the_other_post_commits)

    with pytest.raises(jobs.JobAlreadyStarted) as raised:
        jobs.create_job(owner=owner, request=request, start_token="tok")

    assert raised.value.job == other[0]
    assert TrainingJob.objects.count() == 1


def test_it_lets_two_owners_and_tokenless_starts_alone(owner, outsider, site_apis, no_superlink):
    request = jobs.JobRequest(
        name="script", selections=[], rounds=1, local_epochs=1, learning_rate=0.01, min_clients=1
    )
    for user in (owner, outsider):
        (connection, *_) = register(user, site_apis)
        mine = dataclasses.replace(request, selections=[(connection.pk, "breast_cancer")])
        jobs.create_job(owner=user, request=mine, start_token="same")
        jobs.create_job(owner=user, request=mine)
        jobs.create_job(owner=user, request=mine)

    assert TrainingJob.objects.count() == 6


def test_it_keeps_a_refused_form_on_the_datasets_page_with_the_fields_labels(
    owner, owner_client, site_apis
):
    connections = register(owner, site_apis)
    token = start_token(owner_client.get("/datasets/").content.decode())
    ticked = f"{connections[0].pk}::breast_cancer"

    response = owner_client.post(
        "/jobs/start/",
        form_data(connections, token, name="too many", datasets=[ticked], min_clients=3),
        follow=True,
    )

    page = response.content.decode()
    assert response.redirect_chain == [("/datasets/", 302)]
    assert "Minimum clients: must be between 1 and the number of selected datasets (1)" in page
    assert "min_clients:" not in page
    assert 'id="id_min_clients_error"' in page  # under the field, tied to it by aria
    assert 'value="too many"' in page
    assert re.search(rf'value="{re.escape(ticked)}"[^>]*\schecked', page)
    assert start_token(page) == token  # nothing started: the same form may be sent again
    assert not TrainingJob.objects.exists()
    # a reload of the datasets page shows a fresh form and sends nothing
    assert 'id="start-form-errors"' not in owner_client.get("/datasets/").content.decode()


def test_it_shows_a_fields_own_refusal_by_its_label(owner, owner_client, site_apis):
    connections = register(owner, site_apis)

    response = owner_client.post(
        "/jobs/start/", form_data(connections, "t", rounds=0, learning_rate=50), follow=True
    )

    page = response.content.decode()
    assert "Rounds: must be between 1 and" in page
    assert "Learning rate: must be greater than 0" in page
    assert 'id="id_rounds_error"' in page
    assert "rounds:" not in page and "learning_rate:" not in page
