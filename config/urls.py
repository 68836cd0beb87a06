from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("webapp.urls")),
]

handler404 = "webapp.auth.not_found"
handler500 = "webapp.auth.server_error"
