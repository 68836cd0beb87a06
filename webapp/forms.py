"""The pages' forms. Each field takes its bounds and its error message from the API's rule
for it (webapp.api.parsing), so a form and a script are refused alike."""

from django import forms
from django.core.exceptions import ValidationError

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
            raise ValidationError(str(exc)) from None

    field.validators = [check]
    field.widget.attrs.setdefault("class", "form-control")
    return field


def _whole(rule: parsing.Whole, **kwargs) -> forms.Field:
    # min_value/max_value also become the input's min/max attributes.
    kwargs.setdefault("initial", rule.default)
    return _checked_by(rule, forms.IntegerField(min_value=rule.low, max_value=rule.high, **kwargs))


def _text(rule: parsing.Text, **kwargs) -> forms.Field:
    return _checked_by(rule, forms.CharField(max_length=rule.max_length, **kwargs))


class StartTrainingForm(forms.Form):
    name = _text(parsing.JOB_NAME)
    rounds = _whole(parsing.ROUNDS)
    local_epochs = _whole(parsing.LOCAL_EPOCHS)
    learning_rate = _checked_by(
        parsing.LEARNING_RATE,
        forms.FloatField(
            min_value=parsing.LEARNING_RATE.above,
            max_value=parsing.LEARNING_RATE.at_most,
            initial=parsing.LEARNING_RATE.default,
            widget=forms.NumberInput(attrs={"step": "any"}),
        ),
    )
    min_clients = _whole(parsing.MIN_CLIENTS, initial=2)  # the smallest federation


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
