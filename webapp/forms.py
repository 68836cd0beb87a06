"""The pages' forms. Each field takes its bounds and its error message from the API's rule
for it (webapp.api.parsing), so a form and a script are refused alike."""

import secrets

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from webapp import jobs
from webapp.api import parsing

Rule = parsing.Whole | parsing.Number | parsing.Text


def _checked_by(rule: Rule, field: forms.Field) -> forms.Field:
    """The field with the rule's check in place of Django's own validators (which would add
    their own message for the same bound), and with form-control styling."""

    def check(value: object) -> None:
        try:
            rule.check(value)
        except parsing.BadRequest as exc:
            # Shown under the field's label: the API's "<field name>: " prefix would repeat it.
            raise ValidationError(str(exc).removeprefix(f"{rule.name}: ")) from None

    field.validators = [check]
    field.widget.attrs.setdefault("class", "form-control")
    return field


def _whole(rule: parsing.Whole, **kwargs) -> forms.Field:
    # min_value/max_value also become the input's min/max attributes.
    kwargs.setdefault("initial", rule.default)
    return _checked_by(rule, forms.IntegerField(min_value=rule.low, max_value=rule.high, **kwargs))


def _text(rule: parsing.Text, **kwargs) -> forms.Field:
    return _checked_by(rule, forms.CharField(max_length=rule.max_length, **kwargs))


def new_start_token() -> str:
    return secrets.token_urlsafe(24)


class StartTrainingForm(forms.Form):
    """The job's settings; the datasets are the page's checkboxes (parse_selections).

    `start_token` is new on each page rendered: the same form sent twice starts one job.
    """

    name = _text(parsing.JOB_NAME, label="Job name")
    rounds = _whole(parsing.ROUNDS, label="Rounds")
    local_epochs = _whole(parsing.LOCAL_EPOCHS, label="Local epochs")
    learning_rate = _checked_by(
        parsing.LEARNING_RATE,
        forms.FloatField(
            label="Learning rate",
            min_value=parsing.LEARNING_RATE.above,
            max_value=parsing.LEARNING_RATE.at_most,
            initial=parsing.LEARNING_RATE.default,
            widget=forms.NumberInput(attrs={"step": "any"}),
        ),
    )
    # 2: the smallest federation.
    min_clients = _whole(parsing.MIN_CLIENTS, initial=2, label="Minimum clients")
    start_token = forms.CharField(
        max_length=64, required=False, widget=forms.HiddenInput(), initial=new_start_token
    )

    def add_service_error(self, message: str) -> None:
        """A refusal of webapp.jobs ("min_clients: must be …") under the field it names, or
        for the form as a whole ("datasets: …", "Hospital Madrid: …")."""
        name, sep, rest = message.partition(": ")
        if sep and name in self.fields and not self.fields[name].widget.is_hidden:
            self.add_error(name, rest)
        elif sep and name == "datasets":
            self.add_error(None, f"Datasets: {rest}")
        else:
            self.add_error(None, message)

    def labelled_errors(self) -> list[tuple[str, str]]:
        """Every error as (field's input id or "", "Label: message" or the message): the
        summary at the top of the form, each linking to its field."""
        summary = [("", str(error)) for error in self.non_field_errors()]
        for name, errors in self.errors.items():
            if name == NON_FIELD_ERRORS:
                continue
            field = self[name]
            summary += [(field.id_for_label, f"{field.label}: {error}") for error in errors]
        return summary


class ConnectionForm(forms.Form):
    """Shown on the same page as the job form: its own id prefix keeps the labels apart."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "connection_%s")
        super().__init__(*args, **kwargs)

    name = _text(parsing.CONNECTION_NAME)
    ip = _text(parsing.HOST, label="IP or host")
    port = _whole(parsing.PORT)
    token = _text(parsing.SITE_TOKEN, widget=forms.PasswordInput())


def parse_selections(values: list[str]) -> list[tuple[int, str]]:
    """Checkbox values "<connection id>::<dataset name>" → (id, name)."""
    selections = []
    for value in values:
        connection_id, sep, dataset_name = value.partition("::")
        if not sep or not connection_id.isdigit() or not dataset_name:
            raise jobs.JobValidationError(f"datasets: malformed selection {value!r}")
        selections.append((int(connection_id), dataset_name))
    return selections
