"""Pages. Thin: the forms check each field (webapp.forms), the services check the rest and
change state (webapp.jobs, webapp.sites)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp import jobs, sites
from webapp.forms import ConnectionForm, StartTrainingForm, parse_selections
from webapp.models import Connection, TrainingJob
from webapp.tracking import status

# The overview cards: (data-stat key, label, hint); the dashboard's scripts fill the values.
OVERVIEW_CARDS = [
    ("total", "Clients", ""),
    ("active", "Active", "connected, training, reported or slow; completed once ended"),
    ("warning", "Warnings", "error, offline, slow or dropped"),
    ("accuracy", "Average accuracy", "the latest round's reporters"),
    ("health", "Federation health", "share of clients connected, training, reported or completed"),
    ("round", "Progress", ""),
    ("stragglers", "Stragglers", "slower than the round's others"),
    ("samples", "Average samples", "training rows per client"),
]

# The dashboard's adaptive polling, in seconds: fast while a client trains and through the
# final round, slower between earlier rounds and once the job has ended, slower still in a
# hidden tab; settings.DASHBOARD_POLL overrides any of them (tests use short ones). Failed
# polls back off from retry_base to retry_max.
DASHBOARD_POLL = {
    "training": 3,
    "between_rounds": 8,
    "ended": 30,
    "hidden_factor": 4,
    "retry_base": 2,
    "retry_max": 60,
}


@require_GET
@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    owned = TrainingJob.objects.filter(owner=request.user).only(
        "name", "status", "current_round", "total_rounds", "created_at"
    )
    return render(request, "webapp/job_list.html", {"jobs": owned})


# A refused start form, kept in the session between its POST and the datasets page it is
# redirected to (what was typed and ticked, and the service's refusal, if any).
REFUSED_START = "refused_start_form"


def _datasets_page(
    request: HttpRequest,
    form: StartTrainingForm | None = None,
    connection_form: ConnectionForm | None = None,
    selected: set[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    views = sites.site_views(list(Connection.objects.filter(owner=request.user)))
    return render(
        request,
        "webapp/datasets.html",
        {
            "sites": [vars(site) for site in views],
            "form": form or StartTrainingForm(),
            "connection_form": connection_form or ConnectionForm(),
            "selected": selected or set(),
        },
        status=status,
    )


@require_GET
@login_required
def datasets(request: HttpRequest) -> HttpResponse:
    refused = request.session.pop(REFUSED_START, None)
    if refused is None:
        return _datasets_page(request)
    data = QueryDict(mutable=True)
    for key, values in refused["data"].items():
        data.setlist(key, values)
    form = StartTrainingForm(data)
    form.is_valid()  # the field errors again, from what was typed
    if refused["error"]:
        form.add_service_error(refused["error"])
    return _datasets_page(request, form=form, selected=set(data.getlist("datasets")))


def _back_to_the_form(request: HttpRequest, error: str = "") -> HttpResponse:
    """Redirect-after-post: the datasets page shows the refused form (what was typed, the
    ticked boxes, the errors by each field) at its own URL, and reloading it sends nothing."""
    data = {key: request.POST.getlist(key) for key in request.POST if key != "csrfmiddlewaretoken"}
    request.session[REFUSED_START] = {"data": data, "error": error}
    return redirect("datasets")


@require_POST
@login_required
def add_connection(request: HttpRequest) -> HttpResponse:
    form = ConnectionForm(request.POST)
    if form.is_valid():
        try:
            connection = sites.create_connection(owner=request.user, **form.cleaned_data)
        except sites.InvalidConnection as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Registered {connection.name}.")
            return redirect("datasets")
    return _datasets_page(request, connection_form=form, status=400)


@require_POST
@login_required
def start_training(request: HttpRequest) -> HttpResponse:
    """Validate the selection, create the job with one client id per dataset, submit it; the
    same form sent again opens the job it started."""
    form = StartTrainingForm(request.POST)
    if not form.is_valid():
        return _back_to_the_form(request)
    job_settings = {k: v for k, v in form.cleaned_data.items() if k != "start_token"}
    try:
        job = jobs.create_job(
            owner=request.user,
            request=jobs.JobRequest(
                selections=parse_selections(request.POST.getlist("datasets")), **job_settings
            ),
            start_token=form.cleaned_data["start_token"] or None,
        )
    except jobs.JobValidationError as exc:
        return _back_to_the_form(request, str(exc))
    except jobs.JobAlreadyStarted as exc:
        messages.info(
            request,
            "This job was already started from this form: here it is. To start another, "
            "open Datasets again.",
        )
        return redirect("client_dashboard", job_id=exc.job.pk)
    if job.status == TrainingJob.Status.ERROR:
        messages.error(request, f"The job could not start: {job.error_message}")
    return redirect("client_dashboard", job_id=job.pk)


@require_GET
@login_required
def client_dashboard(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id, owner=request.user)
    performance = reverse("get_client_performance_data", args=[job.pk, "__CLIENT__"])
    poll = {**DASHBOARD_POLL, **getattr(settings, "DASHBOARD_POLL", {})}
    return render(
        request,
        "webapp/client_dashboard.html",
        {
            "job": job,
            "overview_cards": OVERVIEW_CARDS,
            "dashboard_config": {
                "job_id": job.pk,
                "clients_url": reverse("get_clients_data", args=[job.pk]),
                "job_url": reverse("api_job_detail", args=[job.pk]),
                "performance_url_template": performance,
                "events_url_template": reverse("get_client_events", args=[job.pk, "__CLIENT__"]),
                "history_csv_url": reverse("job_history_csv", args=[job.pk]),
                "stop_url": reverse("api_job_stop", args=[job.pk]),
                "model_url": reverse("download_model", args=[job.pk]),
                "login_url": reverse("login"),
                "status_groups": status.dashboard_groups(),
                "poll": {
                    "training_ms": round(1000 * poll["training"]),
                    "between_rounds_ms": round(1000 * poll["between_rounds"]),
                    "ended_ms": round(1000 * poll["ended"]),
                    "hidden_factor": poll["hidden_factor"],
                    "retry_base_ms": round(1000 * poll["retry_base"]),
                    "retry_max_ms": round(1000 * poll["retry_max"]),
                },
            },
        },
    )


@require_GET
@login_required
def download_model(request: HttpRequest, job_id: int) -> FileResponse:
    job = get_object_or_404(TrainingJob, pk=job_id, owner=request.user)
    if job.status != TrainingJob.Status.COMPLETED or not job.model_file:
        raise Http404("the model is available once the job has completed")
    try:
        handle = open(job.model_file, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        raise Http404("the model file is missing on the server") from None
    return FileResponse(handle, as_attachment=True, filename=f"fedtrack_job_{job.pk}.pt")
