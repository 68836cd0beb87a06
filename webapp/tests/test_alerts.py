"""The alert hook posts JSON to a real receiver on loopback, and never raises."""

from webapp import alerts
from webapp.tests.conftest import free_port


def test_it_posts_an_alert_as_json(receiver):
    thread = alerts.send(
        receiver.url, alerts.CLIENT_OFFLINE, 7, "trial", client_id="client_1234abcd", round=2
    )
    thread.join(5)

    (event,) = receiver.events(1)
    assert event["event"] == "client_offline"
    assert (event["job_id"], event["job_name"]) == (7, "trial")
    assert (event["client_id"], event["round"]) == ("client_1234abcd", 2)
    assert event["time"]


def test_it_sends_nothing_without_a_url(settings):
    settings.ALERT_WEBHOOK_URL = ""

    assert alerts.send(alerts.webhook_url(""), alerts.CLIENT_OFFLINE, 1, "x") is None


def test_a_jobs_own_url_takes_precedence_over_the_setting(settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/global"

    assert alerts.webhook_url("http://127.0.0.1:9/job") == "http://127.0.0.1:9/job"
    assert alerts.webhook_url("") == "http://127.0.0.1:9/global"


def test_an_unreachable_receiver_is_logged_not_raised(caplog):
    thread = alerts.send(f"http://127.0.0.1:{free_port()}/", alerts.CLIENT_OFFLINE, 1, "x")
    thread.join(10)

    assert "alert webhook unreachable" in caplog.text
