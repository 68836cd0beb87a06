"""What every endpoint checks before it runs: the HTTP method, and that a job is the caller's.

Authentication is webapp.auth's (`api_login_required`); these come after it.
"""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from webapp.api.errors import json_error
from webapp.models import TrainingJob


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


def owned_job(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve `job_id` to one of the caller's jobs; anyone else's is a 404 like a missing one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, job_id: int, *args, **kwargs) -> HttpResponse:
        # The per-client JSON is parsed only when a view reads it (one more query then):
        # clients_config is shown by no endpoint, clients_status often comes from the cache.
        job = (
            TrainingJob.objects.filter(pk=job_id, owner=request.user)
            .defer("clients_config", "clients_status")
            .first()
        )
        if job is None:
            return json_error("job not found", 404)
        return view(request, job, *args, **kwargs)

    return wrapper
