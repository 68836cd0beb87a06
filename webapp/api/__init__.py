"""The JSON API: the dashboard's endpoints and the job API for scripts (docs/api.md).

    parsing       what a caller may send: each field's type, bounds and message
    serializers   the JSON shapes answered
    freshness     ETags and 304s, and the bearer token's one-query 304
    guards        the method check and job ownership every endpoint applies
    errors        the JSON error shape, also for Django's own 404, 500 and CSRF failures
    *_endpoints   the views, by resource (webapp/urls.py routes to them)

Every error is `{"success": false, "error": "…"}` with its status code; another user's job or
connection is a 404, the same as one that does not exist.
"""
