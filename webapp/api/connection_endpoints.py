"""The caller's site connections: list them with what each site offers, register one."""

from django.http import HttpRequest, JsonResponse

from webapp import sites
from webapp.api import parsing
from webapp.api.errors import json_error
from webapp.api.guards import api_methods
from webapp.api.serializers import connection_json, site_json
from webapp.auth import api_login_required
from webapp.models import Connection


@api_methods("GET", "POST")
@api_login_required
def connections(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        try:
            data = parsing.json_body(request)
            connection = sites.create_connection(
                owner=request.user,
                name=parsing.CONNECTION_NAME.parse(data),
                ip=parsing.HOST.parse(data),
                port=parsing.PORT.parse(data),
                token=parsing.SITE_TOKEN.parse(data),
            )
        except parsing.BadRequest as exc:
            return json_error(str(exc), 400)
        return JsonResponse(
            {"success": True, "connection": connection_json(connection)}, status=201
        )
    views = sites.site_views(list(Connection.objects.filter(owner=request.user)))
    return JsonResponse({"success": True, "connections": [site_json(v) for v in views]})
