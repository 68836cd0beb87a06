"""The Flower ClientApp every site runs (Message API); it never imports Django.

The SuperNode is started with ``--node-config 'site-config="/abs/path/site.toml"'``: the
ClientApp reads the site's datasets and token from there. Problems the site can explain
(unknown dataset, unusable CSV, a global model that does not fit) come back as an ``"error"``
ConfigRecord next to the ``"client"`` one, so the server can pin them on the site; anything
else raises and reaches the server as a Flower error reply.
"""

from __future__ import annotations

import json
import time
from functools import cache

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.config import SiteConfig, SiteConfigError, load_site_config
from clients.datasets import DatasetError, load_dataset, split_train_test, standardize
from clients.protocol import (
    ERROR_MESSAGE,
    NUM_EXAMPLES,
    ClientKey,
    Record,
    SiteKey,
    TrainConfig,
    site_key,
)
from clients.task import build_model, evaluate, train

NODE_CONFIG_KEY = "site-config"
_MAX_REASON = 2000  # keeps a state_dict mismatch listing from bloating the reply

app = ClientApp()


@cache  # Flower starts a fresh process per message; this only spares repeated parsing
def _load(path: str) -> SiteConfig:
    return load_site_config(path)


def site_config(context: Context) -> SiteConfig:
    path = context.node_config.get(NODE_CONFIG_KEY)
    if not isinstance(path, str) or not path:
        raise SiteConfigError(
            f"the SuperNode has no '{NODE_CONFIG_KEY}' node config; start it with "
            f"--node-config '{NODE_CONFIG_KEY}=\"/abs/path/site.toml\"'"
        )
    return _load(path)


@app.query()  # registers and returns the function unchanged: callable in tests
def identify_reply(msg: Message, context: Context) -> Message:
    cfg = site_config(context)
    site = ConfigRecord(
        {
            SiteKey.NAME: cfg.name,
            SiteKey.KEY: site_key(cfg.token),
            SiteKey.DATASETS: json.dumps([d.name for d in cfg.datasets]),
        }
    )
    return Message(content=RecordDict({Record.SITE: site}), reply_to=msg)


@app.train()
def train_reply(msg: Message, context: Context) -> Message:
    cfg = site_config(context)
    config = TrainConfig.from_config(msg.content[Record.CONFIG])
    dataset_name = config.dataset_name
    feature_names, classes = config.feature_names, config.classes
    client = ConfigRecord(
        {
            ClientKey.CLIENT_ID: config.client_id,
            ClientKey.SITE_KEY: site_key(cfg.token),
            ClientKey.DATASET_NAME: dataset_name,
        }
    )

    def failure(reason: str) -> Message:
        error = ConfigRecord({ERROR_MESSAGE: reason[:_MAX_REASON]})
        return Message(
            content=RecordDict({Record.CLIENT: client, Record.ERROR: error}), reply_to=msg
        )

    spec = cfg.dataset(dataset_name)
    if spec is None:
        known = ", ".join(repr(d.name) for d in cfg.datasets) or "none"
        return failure(
            f"dataset {dataset_name!r} is not configured at site {cfg.name!r} (it has: {known})"
        )
    try:
        data = load_dataset(spec, feature_names=feature_names, classes=classes)
    except DatasetError as e:
        return failure(f"dataset {dataset_name!r}: {e}")

    # Fixed seed: the same held-out rows every round, so they never leak into training.
    X_train, X_test, y_train, y_test = split_train_test(data.X, data.y)
    X_train, X_test = standardize(X_train, X_test)
    model = build_model(len(feature_names), len(classes), hidden=config.hidden_size)
    try:
        model.load_state_dict(msg.content[Record.ARRAYS].to_torch_state_dict())
    except (RuntimeError, KeyError, ValueError) as e:
        return failure(f"the global model does not fit this site's model: {e}")

    started = time.monotonic()
    train_loss = train(
        model,
        X_train,
        y_train,
        epochs=config.local_epochs,
        lr=config.learning_rate,
        seed=config.server_round,  # a different but reproducible batch order each round
    )
    train_seconds = time.monotonic() - started
    test_loss, test_accuracy = evaluate(model, X_test, y_test)

    metrics = MetricRecord(
        {
            NUM_EXAMPLES: len(y_train),
            "train_loss": train_loss,
            "loss": test_loss,
            "accuracy": test_accuracy,
            "train_samples": len(y_train),
            "test_samples": len(y_test),
            "train_seconds": train_seconds,
        }
    )
    content = RecordDict(
        {
            Record.ARRAYS: ArrayRecord(model.state_dict()),
            Record.METRICS: metrics,
            Record.CLIENT: client,
        }
    )
    return Message(content=content, reply_to=msg)
