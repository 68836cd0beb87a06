"""Snapshot freshness: the ETags of the polled endpoints, and every 304.

A polled snapshot's ETag is "<tracking_version>-<until>": the version changes with every write
that changes what the endpoint shows (tracking flushes, job status changes: see webapp.jobs),
and until (epoch seconds, or "never") is when a status derived from time (offline, slow) could
next change with nothing written (tracking.next_change_at). A tag is still good while the
version is the same and that moment has not come: checking it costs one indexed query.

Statuses derived from the clock are taken as of the start of the current second: a round's
clients start within milliseconds of each other, and their deadlines would otherwise expire the
snapshot a thousand times a second. So a snapshot changes at most once a second with nothing
written, and shows a client slow or offline at most a second late.

A still-good tag is answered in two places. A browser session's, inside the middleware stack
(`conditional_snapshot`, around the view). A bearer token's, ahead of the stack
(`TokenNotModifiedMiddleware`) for the endpoints listed in TOKEN_FAST_PATHS: one query checks
the token, the job's owner and its version at once.
"""

import functools
import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils import timezone
from django.utils.cache import parse_etags

from webapp import jsoncodec, tracking
from webapp.api.parsing import in_db_int_range
from webapp.auth import TOKEN_MATCHES_SQL, bearer_key, token_tables, use_recorded_since
from webapp.models import ApiToken, TrainingJob

logger = logging.getLogger(__name__)

# A rendered clients/ snapshot is kept this long at most (it is re-rendered on any change).
SNAPSHOT_CACHE_SECONDS = 300
_RENDER_LOCKS = [threading.Lock() for _ in range(64)]  # by job id


# --- tags ---------------------------------------------------------------------------------


def as_of(now: datetime) -> datetime:
    return now.replace(microsecond=0)


def _until(valid_until: datetime | None) -> int | None:
    """The first whole second at which a snapshot taken as of a second before it may differ:
    derive_status as of any whole second before the moment gives the same answer."""
    return None if valid_until is None else math.ceil(valid_until.timestamp())


def snapshot_tag(version: int, until: int | None) -> str:
    return f'"{version}-{"never" if until is None else until}"'


def _fresh_tag(request: HttpRequest, version: int, now: datetime) -> str | None:
    """The caller's If-None-Match tag that still describes the current snapshot, if any."""
    for tag in parse_etags(request.headers.get("If-None-Match", "")):
        stored_version, _, until = tag.strip('"').partition("-")
        if stored_version != str(version):
            continue
        if until == "never" or (until.isdigit() and now.timestamp() < int(until)):
            return tag
    return None


def tagged(response: HttpResponse, tag: str) -> HttpResponse:
    response["ETag"] = tag
    # Browsers and proxies may keep the body, but must ask again before each use.
    response["Cache-Control"] = "private, no-cache"
    return response


def not_modified(request: HttpRequest, version: int | None, now: datetime) -> HttpResponse | None:
    """A 304 if the caller's If-None-Match still describes this version of the snapshot."""
    tag = None if version is None else _fresh_tag(request, version, now)
    return None if tag is None else tagged(HttpResponse(status=304), tag)


# --- the version queries --------------------------------------------------------------------


def job_version(job_id: int, user_id: int) -> int | None:
    """The job's tracking_version if it is this user's job.

    Plain SQL: this runs on every poll, and building the ORM query costs more than the
    database's answer to it.
    """
    if not in_db_int_range(job_id):
        return None
    table = connection.ops.quote_name(TrainingJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tracking_version FROM {table} WHERE id = %s AND owner_id = %s",
            [job_id, user_id],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def job_version_for_token(key: str, now: datetime, job_id: int) -> int | None:
    """The job's tracking_version if it belongs to the active user of this unrevoked token:
    authentication, ownership and the version in one query.

    None when any of that is not so, and also when the token's use is due to be recorded
    (webapp.auth.LAST_USED_EVERY): the caller then takes the full path, which authenticates
    the token as every request does, answers 401 or 404, and records the use.
    """
    if not in_db_int_range(job_id):
        return None
    params = [job_id, ApiToken.hash_key(key), use_recorded_since(now)]
    row = _fetchone_self_checked(_job_version_for_token_sql(connection.vendor), params)
    return None if row is None else row[0]


@functools.lru_cache(maxsize=4)
def _job_version_for_token_sql(vendor: str) -> str:
    # Built once per process: it runs on every scripted poll.
    users, user_pk, tokens = token_tables()
    quote = connection.ops.quote_name
    meta = TrainingJob._meta
    return (
        f"SELECT x.{quote(meta.get_field('tracking_version').column)} "
        f"FROM {quote(meta.db_table)} x "
        f"JOIN {tokens} t ON t.user_id = x.{quote(meta.get_field('owner').column)} "
        f"JOIN {users} u ON u.{user_pk} = t.user_id "
        f"WHERE x.{quote(meta.pk.column)} = %s AND {TOKEN_MATCHES_SQL} AND u.is_active "
        f"AND t.last_used_at >= %s"
    )


def _fetchone_self_checked(sql: str, params: list) -> tuple | None:
    """The first row of `sql`, the query itself standing in for the connection health check.

    With CONN_HEALTH_CHECKS, Django sends a `SELECT 1` before a request's first query on a
    kept connection: on PostgreSQL that doubles the round trips of a 304. Here a kept
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


# --- the responses --------------------------------------------------------------------------


def conditional_snapshot(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 304 to a session's still-good If-None-Match without loading the job.

    Goes outside owned_job: the query is scoped to the caller's jobs, so another user's job
    never matches and falls through to owned_job's 404.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id: int, *args, **kwargs) -> HttpResponse:
        if request.headers.get("If-None-Match"):
            version = job_version(job_id, request.user.pk)
            unchanged = not_modified(request, version, timezone.now())
            if unchanged is not None:
                return unchanged
        return view(request, job_id, *args, **kwargs)

    return wrapper


def versioned_response(
    request: HttpRequest, version: int, render: Callable[[], HttpResponse]
) -> HttpResponse:
    """A resource nothing derived from time shows (a job's own fields): 304 while its version
    stands, else the rendered response tagged with it."""
    unchanged = not_modified(request, version, timezone.now())
    if unchanged is not None:
        return unchanged
    return tagged(render(), snapshot_tag(version, None))


def snapshot_response(
    job: TrainingJob, render: Callable[[TrainingJob, datetime], dict[str, Any]]
) -> HttpResponse:
    """The job's clients snapshot, tagged.

    Every poller of a job gets the same snapshot: each web process renders it once per change
    (a tracking write, or a status derived from time), not per request. One cache entry per
    job, so a running job's old versions take no memory.
    """
    now = timezone.now()
    key = f"clients-data:{job.pk}:{job.created_at.timestamp()}"
    marker = (job.tracking_version, job.status)

    def fresh(cached: tuple | None) -> bool:
        # A snapshot of a later version (rendered by a request that read the job after this
        # one did) is as good: its body and tag belong together.
        return (
            cached is not None
            and (cached[0] == marker or cached[0][0] > job.tracking_version)
            and now.timestamp() < cached[1]
        )

    cached = cache.get(key)
    if not fresh(cached):
        # A poller that arrives while another thread renders this job waits for that render
        # rather than repeating it.
        with _RENDER_LOCKS[job.pk % len(_RENDER_LOCKS)]:
            cached = cache.get(key)
            if not fresh(cached):
                moment = as_of(now)
                until = _until(tracking.next_change_at(job, moment))
                body = jsoncodec.dumps(render(job, moment))
                tag = snapshot_tag(job.tracking_version, until)
                cached = (marker, math.inf if until is None else until, body, tag)
                cache.set(key, cached, SNAPSHOT_CACHE_SECONDS)
    _, _, body, tag = cached
    return tagged(HttpResponse(body, content_type="application/json"), tag)


# --- the bearer token's fast path -------------------------------------------------------------

# The endpoints (by URL name) whose unchanged poll with a bearer token is answered ahead of
# the middleware stack, each with the query that gives its snapshot's version from the token
# and the URL's arguments. The view itself must answer the same tags (conditional_snapshot).
# Not listed: the job's own endpoint, whose poll reconciles the job with Flower first.
TOKEN_FAST_PATHS: dict[str, Callable[..., int | None]] = {
    "get_clients_data": job_version_for_token,
}


class TokenNotModifiedMiddleware:
    """A bearer token's unchanged poll answered 304 from one query, ahead of the stack.

    Scripts and dashboards on a screen poll the same snapshot every few seconds, and nearly
    every poll finds it unchanged. A GET with a bearer token and If-None-Match to an endpoint
    in TOKEN_FAST_PATHS is answered 304 here if its version query says the tag still holds.
    Anything else, and any poll not answered here, goes down the whole stack, where
    BearerTokenMiddleware authenticates the token (401) and the view answers.

    It sits right after SecurityMiddleware and XFrameOptionsMiddleware, which still redirect
    to HTTPS and add their headers; the host is checked against ALLOWED_HOSTS here, as
    CommonMiddleware would. What it skips has nothing to do for such a request: static files,
    sessions and CSRF (no cookie is used, and a GET writes nothing), messages. So such a 304
    costs one round trip to the database (see _fetchone_self_checked).
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
        version_query = TOKEN_FAST_PATHS.get(match.url_name) if match else None
        if version_query is None:
            return None
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
        now = timezone.now()
        return not_modified(request, version_query(key, now, *match.args, **match.kwargs), now)


@functools.lru_cache(maxsize=1024)
def _resolve(path: str) -> ResolverMatch | None:
    """The URL conf's match for a path, remembered: the paths polled are few."""
    try:
        return resolve(path)
    except Resolver404:
        return None
