"""The message protocol between the ServerApp and a site's ClientApp, and what both derive
the same way (a site's key, the order of labels).

Both sides import their names from here, so a key renamed on one side cannot silently miss
the other. Plain Python only: the web process imports this module too, and must not pay
for torch or Flower.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

# A query message whose config asks `ACTION_KEY: IDENTIFY`: the site answers with its `SITE`
# record. Queries are grouped under the same name.
ACTION_KEY: Final = "action"
IDENTIFY: Final = "identify"

# Weighting key of Flower's aggregation: the number of examples a client trained on.
NUM_EXAMPLES: Final = "num-examples"


class Record:
    """Names of the records inside a message's RecordDict."""

    CONFIG: Final = "config"  # server → site: what to do
    ARRAYS: Final = "arrays"  # both ways: the model's weights
    METRICS: Final = "metrics"  # site → server: what training measured
    CLIENT: Final = "client"  # site → server: which client the reply is for
    SITE: Final = "site"  # site → server: the answer to an identify query
    ERROR: Final = "error"  # site → server: a problem the site can explain


class SiteKey:
    """Keys of the `SITE` record (the answer to an identify query)."""

    NAME: Final = "site-name"
    KEY: Final = "site-key"
    DATASETS: Final = "datasets"  # JSON list of the site's dataset names


class ClientKey:
    """Keys of the `CLIENT` record every training reply carries."""

    CLIENT_ID: Final = "client_id"
    SITE_KEY: Final = "site-key"
    DATASET_NAME: Final = "dataset-name"


ERROR_MESSAGE: Final = "message"  # the one key of the `ERROR` record


@dataclass(frozen=True)
class TrainConfig:
    """The `CONFIG` record of a training message: what one client trains, on which data."""

    server_round: int
    client_id: str
    dataset_name: str
    local_epochs: int
    learning_rate: float
    feature_names: list[str]
    classes: list[str]
    hidden_size: int

    SERVER_ROUND: ClassVar[str] = "server-round"
    CLIENT_ID: ClassVar[str] = "client-id"
    DATASET_NAME: ClassVar[str] = "dataset-name"
    LOCAL_EPOCHS: ClassVar[str] = "local-epochs"
    LEARNING_RATE: ClassVar[str] = "learning-rate"
    FEATURE_NAMES: ClassVar[str] = "feature-names"  # JSON list: config records hold no nested lists
    CLASSES: ClassVar[str] = "classes"  # JSON list, in the order every site maps its labels by
    HIDDEN_SIZE: ClassVar[str] = "hidden-size"

    @classmethod
    def job_values(
        cls,
        *,
        local_epochs: int,
        learning_rate: float,
        feature_names: list[str],
        classes: list[str],
        hidden_size: int,
    ) -> dict[str, Any]:
        """The values every client of a job receives, as a config record holds them."""
        return {
            cls.LOCAL_EPOCHS: local_epochs,
            cls.LEARNING_RATE: learning_rate,
            cls.FEATURE_NAMES: json.dumps(feature_names),
            cls.CLASSES: json.dumps(classes),
            cls.HIDDEN_SIZE: hidden_size,
        }

    @classmethod
    def client_values(cls, *, client_id: str, dataset_name: str) -> dict[str, Any]:
        """The values that differ between the clients of one round."""
        return {cls.CLIENT_ID: client_id, cls.DATASET_NAME: dataset_name}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TrainConfig":
        return cls(
            server_round=int(config[cls.SERVER_ROUND]),
            client_id=str(config[cls.CLIENT_ID]),
            dataset_name=str(config[cls.DATASET_NAME]),
            local_epochs=int(config[cls.LOCAL_EPOCHS]),
            learning_rate=float(config[cls.LEARNING_RATE]),
            feature_names=json.loads(str(config[cls.FEATURE_NAMES])),
            classes=json.loads(str(config[cls.CLASSES])),
            hidden_size=int(config[cls.HIDDEN_SIZE]),
        )


def site_key(token: str) -> str:
    """Fingerprint of a site's token: lets the server match nodes to sites without the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def sort_labels(labels: Iterable[str]) -> list[str]:
    """Sort labels numerically when they all are numbers ("2" before "10"), else as text."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)
