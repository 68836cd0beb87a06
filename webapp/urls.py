from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from webapp import api, openapi, views

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
    path("api/connections/", api.connections, name="api_connections"),
    path("api/jobs/", api.job_collection, name="api_jobs"),
    path("api/jobs/<int:job_id>/", api.job_detail, name="api_job_detail"),
    path("api/jobs/<int:job_id>/stop/", api.job_stop, name="api_job_stop"),
    path("api/jobs/<int:job_id>/clients/", api.get_clients_data, name="get_clients_data"),
    path(
        "api/jobs/<int:job_id>/clients/<str:client_id>/performance/",
        api.get_client_performance_data,
        name="get_client_performance_data",
    ),
    path(
        "api/jobs/<int:job_id>/clients/<str:client_id>/events/",
        api.get_client_events,
        name="get_client_events",
    ),
    path("api/jobs/<int:job_id>/history.csv", api.job_history_csv, name="job_history_csv"),
]
