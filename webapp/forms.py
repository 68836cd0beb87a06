from django import forms

from webapp import jobs


def _control(widget: forms.Widget) -> forms.Widget:
    widget.attrs.setdefault("class", "form-control")
    return widget


class StartTrainingForm(forms.Form):
    name = forms.CharField(max_length=200, widget=_control(forms.TextInput()))
    rounds = forms.IntegerField(
        min_value=1, max_value=jobs.MAX_ROUNDS, initial=3, widget=_control(forms.NumberInput())
    )
    local_epochs = forms.IntegerField(
        min_value=1,
        max_value=jobs.MAX_LOCAL_EPOCHS,
        initial=1,
        widget=_control(forms.NumberInput()),
    )
    learning_rate = forms.FloatField(
        min_value=1e-6,
        max_value=10,
        initial=0.01,
        widget=_control(forms.NumberInput(attrs={"step": "any"})),
    )
    min_clients = forms.IntegerField(min_value=1, initial=2, widget=_control(forms.NumberInput()))


class ConnectionForm(forms.Form):
    """Shown on the same page as the job form: its own id prefix keeps the labels apart."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", "connection_%s")
        super().__init__(*args, **kwargs)

    name = forms.CharField(max_length=100, widget=_control(forms.TextInput()))
    ip = forms.CharField(max_length=255, label="IP or host", widget=_control(forms.TextInput()))
    port = forms.IntegerField(
        min_value=1, max_value=65535, initial=5000, widget=_control(forms.NumberInput())
    )
    token = forms.CharField(max_length=255, widget=_control(forms.PasswordInput()))


def parse_selections(values: list[str]) -> list[tuple[int, str]]:
    """Checkbox values "<connection id>::<dataset name>" → (id, name)."""
    selections = []
    for value in values:
        connection_id, sep, dataset_name = value.partition("::")
        if not sep or not connection_id.isdigit() or not dataset_name:
            raise jobs.JobValidationError(f"datasets: malformed selection {value!r}")
        selections.append((int(connection_id), dataset_name))
    return selections
