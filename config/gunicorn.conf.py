"""gunicorn settings for the web app (`gunicorn -c config/gunicorn.conf.py config.wsgi`).

Every value can be set from the environment, so the same file serves the demo host, a
production host and `make bench`. The dashboard's requests are short and CPU-bound (read one
row, derive statuses, serialise JSON), so plain sync workers, one or two per core, fit them.
"""

import multiprocessing
import os

# Sync workers serve one request at a time: one persistent DB connection each.
os.environ.setdefault("DB_CONN_MAX_AGE", "60")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = max_requests // 10
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# e.g. '%(s)s %(D)s' (status, microseconds): `make bench` reads the server's own timings.
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
