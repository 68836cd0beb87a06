"""Bearer-token authentication for scripts, and the login guard of the JSON API."""

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views import csrf, defaults

from webapp.models import ApiToken


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"success": False, "error": message}, status=status)


# A token's last use is recorded at most this often: not one write per poll.
LAST_USED_EVERY = timedelta(seconds=60)


def token_user(key: str, now: datetime) -> AbstractBaseUser | None:
    """The user of an unrevoked API token, with `api_token_id` and `api_token_stale` (its
    last use is older than LAST_USED_EVERY) set on it; None for an unknown or revoked token.

    One plain SQL join: this runs on every scripted poll, and building the equivalent ORM
    query (select_related) took ~1 ms, 8x the raw query and most of a 304's time.
    """
    user_model = get_user_model()
    quote = connection.ops.quote_name
    user_pk = quote(user_model._meta.pk.column)
    sql = (
        f"SELECT u.*, t.id AS api_token_id, "
        f"(t.last_used_at IS NULL OR t.last_used_at < %s) AS api_token_stale "
        f"FROM {quote(user_model._meta.db_table)} u "
        f"JOIN {quote(ApiToken._meta.db_table)} t ON t.user_id = u.{user_pk} "
        f"WHERE t.key_hash = %s AND NOT t.revoked"
    )
    cutoff = connection.ops.adapt_datetimefield_value(now - LAST_USED_EVERY)
    return next(iter(user_model.objects.raw(sql, [cutoff, ApiToken.hash_key(key)])), None)


class BearerTokenMiddleware:
    """`Authorization: Bearer <token>` logs a script in for one request.

    Token requests carry no browser cookies, so CSRF does not apply to them. A wrong token is
    refused outright rather than silently treated as anonymous.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            now = timezone.now()
            user = token_user(header[7:].strip(), now)
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
