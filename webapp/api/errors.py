"""The JSON API's errors: `{"success": false, "error": "…"}` with the status code, for every
failure a caller under /api/ can meet, including the ones Django answers itself (no such URL,
a server error, a failed CSRF check), where pages keep Django's own."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"success": False, "error": message}, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a URL nothing answers."""
    if _is_api(request):
        return json_error("no such API endpoint", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: never an HTML page or a traceback for scripts."""
    if _is_api(request):
        return json_error("internal server error", 500)
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: says what a browser session must send, and what scripts use instead."""
    if _is_api(request):
        return json_error(
            f"CSRF check failed ({reason}): a browser session must send the csrftoken "
            "cookie's value in an X-CSRFToken header; scripts use a bearer token",
            403,
        )
    return csrf.csrf_failure(request, reason)
