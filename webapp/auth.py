"""Bearer-token authentication for scripts, and the login guard of the JSON API."""

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError, connection
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils import timezone
from django.views import csrf, defaults

from webapp.models import ApiToken

logger = logging.getLogger(__name__)


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"success": False, "error": message}, status=status)


# A token's last use is recorded at most this often: not one write per poll.
LAST_USED_EVERY = timedelta(seconds=60)


# A token that authenticates: its hash matches and it is not revoked (alias `t`).
_TOKEN_MATCHES = "t.key_hash = %s AND NOT t.revoked"


def _tables() -> tuple[str, str, str]:
    """Quoted names of the user table, its primary key column and the token table."""
    quote = connection.ops.quote_name
    user_meta = get_user_model()._meta
    return quote(user_meta.db_table), quote(user_meta.pk.column), quote(ApiToken._meta.db_table)


def token_user(key: str, now: datetime) -> AbstractBaseUser | None:
    """The user of an unrevoked API token, with `api_token_id` and `api_token_stale` (its
    last use is older than LAST_USED_EVERY) set on it; None for an unknown or revoked token.

    One plain SQL join: this runs on every scripted poll, and building the equivalent ORM
    query (select_related) took ~1 ms, 8x the raw query and most of a 304's time.
    """
    users, user_pk, tokens = _tables()
    sql = (
        f"SELECT u.*, t.id AS api_token_id, "
        f"(t.last_used_at IS NULL OR t.last_used_at < %s) AS api_token_stale "
        f"FROM {users} u JOIN {tokens} t ON t.user_id = u.{user_pk} "
        f"WHERE {_TOKEN_MATCHES}"
    )
    cutoff = connection.ops.adapt_datetimefield_value(now - LAST_USED_EVERY)
    return next(iter(get_user_model().objects.raw(sql, [cutoff, ApiToken.hash_key(key)])), None)


def token_owned_value(key: str, now: datetime, model: type[Model], column: str, pk: int) -> Any:
    """`column` of `model`'s row `pk` (owned by its `owner` field) if that row belongs to the
    active user of this unrevoked token: authentication, ownership and the value in one query.

    None when any of that is not so, and also when the token's use is due to be recorded
    (LAST_USED_EVERY): the caller then takes the full path, which authenticates the token as
    every request does (BearerTokenMiddleware), answers 401 or 404, and records the use.
    """
    cutoff = connection.ops.adapt_datetimefield_value(now - LAST_USED_EVERY)
    row = _fetchone_self_checked(
        _owned_value_sql(connection.vendor, model, column), [pk, ApiToken.hash_key(key), cutoff]
    )
    return None if row is None else row[0]


@functools.lru_cache(maxsize=16)
def _owned_value_sql(vendor: str, model: type[Model], column: str) -> str:
    # Built once per process: assembling it took a third of a 304's own time on SQLite.
    users, user_pk, tokens = _tables()
    quote = connection.ops.quote_name
    meta = model._meta
    return (
        f"SELECT x.{quote(column)} FROM {quote(meta.db_table)} x "
        f"JOIN {tokens} t ON t.user_id = x.{quote(meta.get_field('owner').column)} "
        f"JOIN {users} u ON u.{user_pk} = t.user_id "
        f"WHERE x.{quote(meta.pk.column)} = %s AND {_TOKEN_MATCHES} AND u.is_active "
        f"AND t.last_used_at >= %s"
    )


def _fetchone_self_checked(sql: str, params: list) -> tuple | None:
    """The first row of `sql`, the query itself standing in for the connection health check.

    With CONN_HEALTH_CHECKS, Django sends a `SELECT 1` before a request's first query on a
    kept connection: on PostgreSQL that doubled the round trips of a 304. Here a kept
    connection that has died makes the query itself fail; the connection is closed and None
    returned, and the caller's full path reconnects, as the health check would have.
    """
    connection.health_check_done = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except DatabaseError:
        logger.info("a kept database connection failed; reconnecting", exc_info=True)
        connection.close()
        return None


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


class TokenNotModifiedMiddleware:
    """A bearer token's unchanged poll answered 304 from one query, ahead of the stack.

    Scripts and dashboards on a screen poll the same snapshot every few seconds, and nearly
    every poll finds it unchanged. For a GET with a bearer token and If-None-Match to a view
    that offers `token_not_modified(request, key, **url_kwargs)` (webapp.api), that hook
    checks the token, the ownership and the version in one query (token_owned_value) and may
    answer 304. Anything else, and any poll the hook does not answer, goes down the whole
    stack, where BearerTokenMiddleware authenticates the token (401) and the view answers.

    It sits right after SecurityMiddleware and XFrameOptionsMiddleware, which still redirect
    to HTTPS and add their headers; the host is checked against ALLOWED_HOSTS here, as
    CommonMiddleware would. What it skips has nothing to do for such a request: static
    files, sessions and CSRF (no cookie is used, and a GET writes nothing), messages. On
    PostgreSQL this took a 304 from three round trips to the database to one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.not_modified(request) or self.get_response(request)

    @staticmethod
    def not_modified(request: HttpRequest) -> HttpResponse | None:
        if request.method != "GET" or "If-None-Match" not in request.headers:
            return None
        key = bearer_key(request)
        if key is None:
            return None
        match = _resolve(request.path_info)
        hook = getattr(match.func, "token_not_modified", None) if match else None
        if hook is None:
            return None
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
        return hook(request, key, *match.args, **match.kwargs)


@functools.lru_cache(maxsize=1024)
def _resolve(path: str) -> ResolverMatch | None:
    """The URL conf's match for a path, remembered: the paths polled are few."""
    try:
        return resolve(path)
    except Resolver404:
        return None


def api_login_required(view: Callable) -> Callable:
    """Like login_required, but answers 401 JSON instead of redirecting to the login page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return json_error("authentication required", 401)
        return view(request, *args, **kwargs)

    return wrapper


def api_methods(*methods: str) -> Callable[[Callable], Callable]:
    """Allow only these HTTP methods, answering others with a JSON 405."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = json_error(f"method {request.method} not allowed", 405)
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL nothing answers: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error("no such API endpoint", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON under /api/ (never an HTML page or a traceback for scripts)."""
    if request.path.startswith("/api/"):
        return json_error("internal server error", 500)
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the API's callers get its JSON error shape, pages keep Django's."""
    if request.path.startswith("/api/"):
        return json_error(
            f"CSRF check failed ({reason}): a browser session must send the csrftoken "
            "cookie's value in an X-CSRFToken header; scripts use a bearer token",
            403,
        )
    return csrf.csrf_failure(request, reason)
