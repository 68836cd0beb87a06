"""What a caller may send: each field's type, bounds and error message, declared once.

The JSON API parses request bodies with these rules, the pages' forms build their fields from
them (webapp.forms), and the services check what they are given with them (webapp.jobs,
webapp.sites), so a bound and its message cannot differ between the three. This module imports
nothing else of the web app: any of them may use it.

Each rule has two steps. `parse` takes a field from a JSON object and checks what it is (a
whole number, a number, a non-blank string of at most so many characters, without NUL).
`check` takes a value of that type and checks that it is allowed (its bounds): the services
call it, so a bound holds whoever calls them, and a bound may depend on the rest of the
request (min_clients). A message starts with the field's name, as the API returns it
(`rounds: must be between 1 and 1000`); the messages are part of the API's contract
(docs/api.md).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest

MAX_BODY_BYTES = 1024 * 1024
# What a database integer column holds: beyond it SQLite raises instead of finding nothing.
DB_INT_MIN, DB_INT_MAX = -(2**63), 2**63 - 1


class BadRequest(ValueError):
    """A value the caller must change; the message names the field and says how."""


@contextmanager
def refused_as(error: type[BadRequest]) -> Iterator[None]:
    """A rule's refusal inside the block raised as `error`: a service's own kind of
    BadRequest, which its callers catch."""
    try:
        yield
    except error:
        raise
    except BadRequest as exc:
        raise error(str(exc)) from None


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest("request body is larger than 1 MB")
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def in_db_int_range(value: int) -> bool:
    return DB_INT_MIN <= value <= DB_INT_MAX


@dataclass(frozen=True)
class Whole:
    """A whole number in [low, high]. `high_text` names a bound that depends on the rest of
    the request (`the number of selected datasets`); its value is then given to `check`."""

    name: str
    low: int | None = None
    high: int | None = None
    default: int | None = None
    high_text: str = ""

    def parse(self, data: dict[str, Any], default: int | None = None) -> int:
        value = data.get(self.name, self.default if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{self.name}: must be a whole number")
        if not in_db_int_range(value):
            raise BadRequest(f"{self.name}: out of range")
        return value

    def check(self, value: int, high: int | None = None) -> None:
        if not in_db_int_range(value):
            raise BadRequest(f"{self.name}: out of range")
        high = self.high if high is None else high
        if (self.low is not None and value < self.low) or (high is not None and value > high):
            raise BadRequest(self._range_message(high))

    def _range_message(self, high: int | None) -> str:
        if not self.high_text:
            return f"{self.name}: must be between {self.low} and {high}"
        shown = "" if high is None else f" ({high})"
        return f"{self.name}: must be between {self.low} and {self.high_text}{shown}"


@dataclass(frozen=True)
class Number:
    """A number greater than `above` and at most `at_most`."""

    name: str
    above: float
    at_most: float
    default: float

    def parse(self, data: dict[str, Any]) -> float:
        value = data.get(self.name, self.default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{self.name}: must be a number")
        return float(value)

    def check(self, value: float) -> None:
        if not self.above < value <= self.at_most:  # also refuses NaN
            raise BadRequest(
                f"{self.name}: must be greater than {self.above} and at most {self.at_most}"
            )


_http_url = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class Text:
    """A non-blank string of at most `max_length` characters, returned stripped. An optional
    one may be absent or empty (then ""); a `url` one must be an http(s) URL."""

    name: str
    max_length: int
    optional: bool = False
    url: bool = False

    def parse(self, data: dict[str, Any]) -> str:
        """A string's length and characters are what it is: checked here already."""
        value = data.get(self.name)
        if self.optional and value in (None, ""):
            return ""
        if not isinstance(value, str):
            raise BadRequest(f"{self.name}: must be a non-empty string")
        self.check(value)
        return value.strip()

    def check(self, value: str) -> None:
        if self.optional and value == "":
            return
        if not value.strip():
            raise BadRequest(f"{self.name}: must be a non-empty string")
        if len(value) > self.max_length:
            raise BadRequest(f"{self.name}: at most {self.max_length} characters")
        if "\x00" in value:  # PostgreSQL refuses NUL in text: a 400, not a 500
            raise BadRequest(f"{self.name}: must not contain NUL characters")
        if self.url:
            try:
                _http_url(value)
            except ValidationError:
                raise BadRequest(f"{self.name}: must be an http(s) URL") from None


# A training job (POST /api/jobs/, the start form).
JOB_NAME = Text("name", 200)
ROUNDS = Whole("rounds", 1, 1000, default=3)
LOCAL_EPOCHS = Whole("local_epochs", 1, 100, default=1)
LEARNING_RATE = Number("learning_rate", above=0, at_most=10, default=0.01)
MIN_CLIENTS = Whole("min_clients", 1, high_text="the number of selected datasets")
ALERT_WEBHOOK_URL = Text("alert_webhook_url", 500, optional=True, url=True)
CONNECTION_ID = Whole("connection_id")
DATASET_NAME = Text("dataset_name", 200)

# A site's connection (POST /api/connections/, the connection form).
CONNECTION_NAME = Text("name", 100)
HOST = Text("ip", 255)
PORT = Whole("port", 1, 65535, default=5000)
SITE_TOKEN = Text("token", 255)
