"""Bearer tokens: stored hashed, revocable from the command line, never written to logs."""

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from webapp.models import ApiToken

pytestmark = pytest.mark.django_db


def api(key: str):
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/jobs/")


def test_it_stores_only_the_hash_of_a_token(owner, owner_token):
    stored = ApiToken.objects.get(user=owner)

    assert stored.key_hash == ApiToken.hash_key(owner_token)
    assert owner_token not in {stored.key_hash, stored.name}
    assert stored.prefix == owner_token[:8] and len(stored.prefix) < len(owner_token)


def test_it_revokes_a_token_by_its_prefix(owner, owner_token, capsys):
    assert api(owner_token).status_code == 200

    call_command("revoke_api_token", owner_token[:8])

    assert f"revoked {owner_token[:8]}" in capsys.readouterr().out
    response = api(owner_token)
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "invalid or revoked API token"}


def test_revoking_leaves_the_users_other_tokens_working(owner):
    _, first = ApiToken.issue(owner)
    _, second = ApiToken.issue(owner)

    call_command("revoke_api_token", first)

    assert api(first).status_code == 401
    assert api(second).status_code == 200


@pytest.mark.parametrize(
    ("prefix", "error"),
    [("ft_", "at least the first 4 characters"), ("ft_zzzzz", "no active token starts with")],
)
def test_it_says_why_it_cannot_revoke(owner, owner_token, prefix, error):
    with pytest.raises(CommandError, match=error):
        call_command("revoke_api_token", prefix)
    assert api(owner_token).status_code == 200


def test_it_refuses_to_guess_between_tokens_sharing_a_prefix(owner, outsider):
    ApiToken.objects.create(user=owner, key_hash="a" * 64, prefix="ft_same1")
    ApiToken.objects.create(user=outsider, key_hash="b" * 64, prefix="ft_same1")

    with pytest.raises(CommandError, match="2 tokens match"):
        call_command("revoke_api_token", "ft_same1")
    call_command("revoke_api_token", "ft_same1", user="alice")

    assert list(ApiToken.objects.filter(revoked=True).values_list("user__username", flat=True)) == [
        "alice"
    ]


def test_no_token_ever_appears_in_the_logs(owner, owner_token, caplog):
    _, revoked = ApiToken.issue(owner)
    ApiToken.objects.filter(prefix=revoked[:8]).update(revoked=True)
    wrong = owner_token[:-4] + "XXXX"
    caplog.set_level(logging.DEBUG)

    api(owner_token)  # accepted
    api(revoked)  # revoked: 401
    api(wrong)  # unknown: 401
    Client(HTTP_AUTHORIZATION=f"Bearer {owner_token}").get("/api/jobs/999/")  # 404, logged
    Client(HTTP_AUTHORIZATION=f"Bearer {wrong}").post("/api/jobs/1/stop/")  # 401, logged

    assert "Unauthorized" in caplog.text or "Not Found" in caplog.text  # requests were logged
    for key in (owner_token, revoked, wrong):
        assert key not in caplog.text
        assert key[8:] not in caplog.text
