"""Who is calling: bearer-token authentication for scripts, and the login guard of the JSON
API. Whether a caller's copy of a snapshot is still good is webapp.api.freshness's."""

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from webapp.api.errors import json_error
from webapp.models import ApiToken

# A token's last use is recorded at most this often: not one write per poll.
LAST_USED_EVERY = timedelta(seconds=60)

# A token that authenticates, as SQL on the token table aliased `t`: its hash matches (the
# parameter: ApiToken.hash_key(key)) and it is not revoked.
TOKEN_MATCHES_SQL = "t.key_hash = %s AND NOT t.revoked"


def token_tables() -> tuple[str, str, str]:
    """Quoted names of the user table, its primary key column and the token table."""
    quote = connection.ops.quote_name
    user_meta = get_user_model()._meta
    return quote(user_meta.db_table), quote(user_meta.pk.column), quote(ApiToken._meta.db_table)


def use_recorded_since(now: datetime) -> object:
    """The SQL parameter for `last_used_at`: a token used after it needs no new record."""
    return connection.ops.adapt_datetimefield_value(now - LAST_USED_EVERY)


def token_user(key: str, now: datetime) -> AbstractBaseUser | None:
    """The user of an unrevoked API token, with `api_token_id` and `api_token_stale` (its
    last use is older than LAST_USED_EVERY) set on it; None for an unknown or revoked token.

    One plain SQL join: this runs on every scripted poll, and building the equivalent ORM
    query (select_related) costs more than the database's answer to it.
    """
    users, user_pk, tokens = token_tables()
    sql = (
        f"SELECT u.*, t.id AS api_token_id, "
        f"(t.last_used_at IS NULL OR t.last_used_at < %s) AS api_token_stale "
        f"FROM {users} u JOIN {tokens} t ON t.user_id = u.{user_pk} "
        f"WHERE {TOKEN_MATCHES_SQL}"
    )
    params = [use_recorded_since(now), ApiToken.hash_key(key)]
    return next(iter(get_user_model().objects.raw(sql, params)), None)


def bearer_key(request: HttpRequest) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, if the request has one."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


class BearerTokenMiddleware:
    """`Authorization: Bearer <token>` logs a script in for one request.

    Token requests carry no browser cookies, so CSRF does not apply to them. A wrong token is
    refused outright rather than silently treated as anonymous.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = bearer_key(request)
        if key is not None:
            now = timezone.now()
            user = token_user(key, now)
            if user is None or not user.is_active:
                return json_error("invalid or revoked API token", 401)
            if user.api_token_stale:
                ApiToken.objects.filter(pk=user.api_token_id).update(last_used_at=now)
            request.user = user
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


def api_login_required(view: Callable) -> Callable:
    """Like login_required, but answers 401 JSON instead of redirecting to the login page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return json_error("authentication required", 401)
        return view(request, *args, **kwargs)

    return wrapper
