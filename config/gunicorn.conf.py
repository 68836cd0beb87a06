"""gunicorn settings for the web app (`gunicorn -c config/gunicorn.conf.py config.wsgi`).

Every value can be set from the environment, so the same file serves the demo host, a
production host and `make bench`. The dashboard's requests are short and CPU-bound (read one
row, derive statuses, serialise JSON) and mostly answered from a per-process snapshot cache.
"""

import gc
import multiprocessing
import os

# A persistent DB connection per worker thread.
os.environ.setdefault("DB_CONN_MAX_AGE", "60")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# One process per core, a few threads each (gthread): a process renders a job's snapshot once
# per change for all its threads (webapp.api), threads keep connections alive between polls,
# and a poll waiting on the SuperLink (reconciliation) does not hold up the others.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread" if threads > 1 else "sync")
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = max_requests // 10
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# Seconds an idle connection stays open: longer than the dashboard's 3 s and 8 s polls.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 10))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# e.g. '%(s)s %(D)s' (status, microseconds): `make bench` reads the server's own timings.
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")


def post_worker_init(worker) -> None:
    """Import the whole app, then put every object it made out of the collector's sight.

    A full garbage collection over the ~60,000 objects of Django, gRPC and Flower stalled a
    worker for 30-60 ms a few times a minute: the slowest polls `make bench` measured. The
    startup objects live as long as the worker, so there is nothing to collect among them.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view and what it imports
    gc.collect()
    gc.freeze()
