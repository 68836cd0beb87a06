"""The OpenAPI 3 document of the JSON API, served as written (webapp/openapi.yaml).

Login is required like everywhere else: the document holds no data, but the project's rule is
that nothing answers an anonymous caller, and an API client has its bearer token anyway.
"""

from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse

from webapp.api.guards import api_methods
from webapp.auth import api_login_required

SCHEMA_PATH = Path(__file__).with_name("openapi.yaml")


@cache
def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


@api_methods("GET")
@api_login_required
def api_schema(request: HttpRequest) -> HttpResponse:
    return HttpResponse(schema_text(), content_type="application/yaml; charset=utf-8")
