"""orjson behind the interfaces Django's JSONField and our API responses use.

A job's per-client snapshot is about 0.5 MB of JSON at 1,000 clients: the tracker decodes and
encodes it on every flush, and the API decodes it and encodes the rows on every change. The
standard library took 5–7 ms for each of those steps; orjson takes 0.4–2 ms.
"""

import json
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

# Like json.dumps: {1: …} becomes {"1": …}; dates and times go to DjangoJSONEncoder, which
# writes them as the rest of Django does (milliseconds, "Z").
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any) -> bytes:
    """UTF-8 JSON; dates, decimals and UUIDs as DjangoJSONEncoder writes them."""
    return orjson.dumps(value, default=DjangoJSONEncoder().default, option=_OPTIONS)


class Encoder(json.JSONEncoder):
    """A JSONField `encoder`: Django calls json.dumps(value, cls=Encoder)."""

    def encode(self, o: Any) -> str:
        return dumps(o).decode()


class Decoder(json.JSONDecoder):
    """A JSONField `decoder`: Django calls json.loads(text, cls=Decoder)."""

    def decode(self, s: str, _w: Any = None) -> Any:
        return orjson.loads(s)


class TextJSONField(models.JSONField):
    """A JSONField kept as plain text on every database, PostgreSQL included.

    PostgreSQL's jsonb parses a value on every write and re-prints it on every read: for the
    0.4 MB per-client snapshot at 1,000 clients, 15 ms per tracking flush and 3 ms per read
    (text: 5 ms and 1 ms, measured). The snapshot is only ever read and written whole, never
    queried into, so jsonb buys it nothing. SQLite's JSON_VALID check is left out for the
    same reason: every value is written by this field's encoder.
    """

    def get_internal_type(self) -> str:
        # Text to the schema editor too: PostgreSQL's ALTER COLUMN gets its USING cast both
        # ways (jsonb to text, and back on a rollback of the migration).
        return "TextField"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "text"

    def db_check(self, connection: BaseDatabaseWrapper) -> None:
        return None

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if hasattr(value, "as_sql"):  # an expression: the database computes it
            return value
        return json.dumps(value, cls=self.encoder)
