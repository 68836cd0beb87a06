from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from webapp import openapi, views
from webapp.api import client_endpoints, connection_endpoints, history_endpoints, job_endpoints

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="job_list"), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/start/", views.start_training, name="start_training"),
    path("jobs/<int:job_id>/", views.client_dashboard, name="client_dashboard"),
    path("jobs/<int:job_id>/model/", views.download_model, name="download_model"),
    path("datasets/", views.datasets, name="datasets"),
    path("connections/", views.add_connection, name="add_connection"),
    # JSON API
    path("api/schema/", openapi.api_schema, name="api_schema"),
    path("api/connections/", connection_endpoints.connections, name="api_connections"),
    path("api/jobs/", job_endpoints.job_collection, name="api_jobs"),
    path("api/jobs/<int:job_id>/", job_endpoints.job_detail, name="api_job_detail"),
    path("api/jobs/<int:job_id>/stop/", job_endpoints.job_stop, name="api_job_stop"),
    path(
        "api/jobs/<int:job_id>/clients/", client_endpoints.get_clients_data, name="get_clients_data"
    ),
    path(
        "api/jobs/<int:job_id>/clients/<str:client_id>/performance/",
        client_endpoints.get_client_performance_data,
        name="get_client_performance_data",
    ),
    path(
        "api/jobs/<int:job_id>/clients/<str:client_id>/events/",
        client_endpoints.get_client_events,
        name="get_client_events",
    ),
    path(
        "api/jobs/<int:job_id>/history.csv",
        history_endpoints.job_history_csv,
        name="job_history_csv",
    ),
]
