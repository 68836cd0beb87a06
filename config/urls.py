from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("webapp.urls")),
]

handler404 = "webapp.api.errors.not_found"
handler500 = "webapp.api.errors.server_error"
