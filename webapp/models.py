"""Sites (connections), training jobs, and the per-client history of each job.

`TrainingJob.clients_status` is the JSON snapshot that the dashboard API serves; the
per-round history and the per-client events are rows, so the snapshot stays small.
Only `webapp.tracking` writes clients_status, history and events.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models

from clients.protocol import site_key
from webapp import jsoncodec

FAST_JSON = {"encoder": jsoncodec.Encoder, "decoder": jsoncodec.Decoder}


class Connection(models.Model):
    """A site's client API, as the coordinator registered it: the UI and API call it a "site" or
    a "connection"; Flower knows the same site as a node."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    ip = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=5000)
    token = models.CharField(max_length=255, help_text="Bearer token of the site's client API")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_connection_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ip}:{self.port})"

    @property
    def site_key(self) -> str:
        """The fingerprint a site's ClientApp echoes to prove which site it is."""
        return site_key(self.token)


class TrainingJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        STOPPED = "stopped"
        ERROR = "error"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.STOPPED, Status.ERROR)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error_message = models.TextField(blank=True)

    total_rounds = models.PositiveIntegerField()
    local_epochs = models.PositiveIntegerField(default=1)
    learning_rate = models.FloatField(default=0.01)
    min_clients = models.PositiveIntegerField(default=1)
    current_round = models.PositiveIntegerField(default=0)
    # What the federation agreed on at start: feature order, class labels.
    model_config = models.JSONField(default=dict, blank=True, **FAST_JSON)

    clients_config = models.JSONField(
        default=dict, help_text="Client ids mapped to sites", **FAST_JSON
    )
    # 0.5 MB at 1,000 clients, decoded and encoded on every tracking flush: orjson, and text
    # rather than jsonb on PostgreSQL (jsoncodec.TextJSONField).
    clients_status = jsoncodec.TextJSONField(default=dict, blank=True, **FAST_JSON)
    # Bumped by every tracking flush: a cheap change marker for pollers (ETag).
    tracking_version = models.PositiveIntegerField(default=0)

    # Flower run ids are unsigned 64-bit: too large for a signed BIGINT, so kept as text.
    flower_run_id = models.CharField(max_length=20, blank=True)
    model_file = models.CharField(max_length=500, blank=True)
    # Optional alert hook: POSTed when a client goes offline or the job nears min_clients.
    alert_webhook_url = models.URLField(blank=True, max_length=500)
    # Seconds the job's ServerApp has spent writing tracking (every flush, whichever thread):
    # tracking's whole cost to the job, which `make bench` compares with its wall time.
    tracking_write_seconds = models.FloatField(default=0)
    # Written by the job's ServerApp with every flush: when it stops moving, the ServerApp is gone.
    server_seen_at = models.DateTimeField(null=True, blank=True)
    # The one-time token of the page form that started the job: the same form sent again (Back,
    # a double click, two tabs) finds this job instead of starting a second one. NULL for a job
    # started without one (a script): NULLs never clash under the unique constraint.
    start_token = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]
        constraints = [
            # Two simultaneous posts of one form: the database lets one job in.
            models.UniqueConstraint(
                fields=["owner", "start_token"], name="unique_start_token_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class ClientRoundMetric(models.Model):
    """One client's result for one round: the history behind the dashboard's charts."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="round_metrics")
    client_id = models.CharField(max_length=32)
    round = models.PositiveIntegerField()
    accuracy = models.FloatField(null=True)
    loss = models.FloatField(null=True)
    train_loss = models.FloatField(null=True)
    train_samples = models.PositiveIntegerField(default=0)
    test_samples = models.PositiveIntegerField(default=0)
    response_time = models.FloatField(null=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["job", "client_id", "round"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "client_id", "round"], name="unique_client_round_metric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} round {self.round}"


class ClientEvent(models.Model):
    """A change in one client's state inside a job: the dashboard's timeline."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="client_events")
    client_id = models.CharField(max_length=32)
    round = models.PositiveIntegerField(default=0)
    old_status = models.CharField(max_length=20, blank=True)
    new_status = models.CharField(max_length=20)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "client_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.old_status} → {self.new_status}"


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        key = "ft_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash_key(key), prefix=key[:8])
        return token, key
