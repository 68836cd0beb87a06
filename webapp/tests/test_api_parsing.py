"""One rule per field: the JSON API, the pages' forms and the job and connection services
refuse the same value with the same message (webapp.api.parsing)."""

import pytest
from django.test import Client

from webapp import jobs, sites
from webapp.forms import ConnectionForm, StartTrainingForm
from webapp.models import Connection, TrainingJob

pytestmark = pytest.mark.django_db

JOB = {
    "name": "trial",
    "rounds": 2,
    "local_epochs": 1,
    "learning_rate": 0.01,
    "min_clients": 1,
}
# (field, a value of the right type that is out of bounds, the message)
JOB_BOUNDS = [
    ("rounds", 0, "rounds: must be between 1 and 1000"),
    ("rounds", 1001, "rounds: must be between 1 and 1000"),
    ("local_epochs", 0, "local_epochs: must be between 1 and 100"),
    ("local_epochs", 101, "local_epochs: must be between 1 and 100"),
    ("learning_rate", 0.0, "learning_rate: must be greater than 0 and at most 10"),
    ("learning_rate", 10.5, "learning_rate: must be greater than 0 and at most 10"),
    ("name", "n" * 201, "name: at most 200 characters"),
]


def under_its_label(field: str, message: str) -> str:
    """A form shows the rule's message under the field's label: without the API's prefix."""
    return message.removeprefix(f"{field}: ")


@pytest.fixture
def api(owner_token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}")


@pytest.mark.parametrize(("field", "value", "message"), JOB_BOUNDS)
def test_it_refuses_a_job_field_alike_everywhere(owner, api, field, value, message):
    selection = {"connection_id": 1, "dataset_name": "breast_cancer"}
    response = api.post(
        "/api/jobs/",
        {**JOB, "datasets": [selection], field: value},
        content_type="application/json",
    )
    form = StartTrainingForm({**JOB, field: value})
    with pytest.raises(jobs.JobValidationError) as refused:
        jobs.create_job(
            owner=owner,
            request=jobs.JobRequest(selections=[(1, "breast_cancer")], **{**JOB, field: value}),
        )

    assert response.status_code == 400
    assert response.json() == {"success": False, "error": message}
    assert not form.is_valid()
    assert form.errors[field] == [under_its_label(field, message)]
    assert str(refused.value) == message
    assert not TrainingJob.objects.exists()


def test_it_refuses_too_few_clients_alike_on_the_form_and_in_the_service(owner):
    form = StartTrainingForm({**JOB, "min_clients": 0})
    with pytest.raises(jobs.JobValidationError) as refused:
        jobs.create_job(
            owner=owner,
            request=jobs.JobRequest(selections=[(1, "a"), (1, "b")], **{**JOB, "min_clients": 0}),
        )

    # The form cannot know the selection's size; the service names it.
    assert form.errors["min_clients"] == ["must be between 1 and the number of selected datasets"]
    assert str(refused.value) == (
        "min_clients: must be between 1 and the number of selected datasets (2)"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", 0, "port: must be between 1 and 65535"),
        ("port", 65536, "port: must be between 1 and 65535"),
        ("name", "n" * 101, "name: at most 100 characters"),
        ("ip", "h" * 256, "ip: at most 255 characters"),
        ("token", "t" * 256, "token: at most 255 characters"),
    ],
)
def test_it_refuses_a_connection_field_alike_on_the_api_and_the_form(api, field, value, message):
    body = {"name": "Hospital", "ip": "10.0.0.1", "port": 5000, "token": "t", field: value}

    response = api.post("/api/connections/", body, content_type="application/json")
    form = ConnectionForm(body)

    assert response.status_code == 400
    assert response.json() == {"success": False, "error": message}
    assert form.errors[field] == [under_its_label(field, message)]
    assert not Connection.objects.exists()


def test_it_refuses_a_port_out_of_range_in_the_service_too(owner):
    with pytest.raises(sites.InvalidConnection, match="^port: must be between 1 and 65535$"):
        sites.create_connection(owner=owner, name="h", ip="10.0.0.1", port=70000, token="t")

    assert not Connection.objects.exists()


def test_it_takes_the_forms_limits_and_defaults_from_the_same_rules():
    form = StartTrainingForm()

    rounds = form["rounds"].as_widget()
    assert 'min="1"' in rounds and 'max="1000"' in rounds and 'value="3"' in rounds
    assert 'maxlength="200"' in form["name"].as_widget()
    assert 'max="65535"' in ConnectionForm()["port"].as_widget()
