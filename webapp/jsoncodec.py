"""orjson behind the interfaces Django's JSONField and our API responses use.

A job's per-client snapshot is about 0.5 MB of JSON at 1,000 clients: the tracker decodes and
encodes it on every flush, and the API decodes it and encodes the rows on every change. The
standard library took 5–7 ms for each of those steps; orjson takes 0.4–2 ms.
"""

import json
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder

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
