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

from clients.config import SiteConfig, SiteConfigError, load_site_config, site_key
from clients.datasets import DatasetError, load_dataset, split_train_test, standardize
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
            "site-name": cfg.name,
            "site-key": site_key(cfg.token),
            "datasets": json.dumps([d.name for d in cfg.datasets]),
        }
    )
    return Message(content=RecordDict({"site": site}), reply_to=msg)


@app.train()
def train_reply(msg: Message, context: Context) -> Message:
    cfg = site_config(context)
    config = msg.content["config"]
    client_id = str(config["client-id"])
    dataset_name = str(config["dataset-name"])
    feature_names: list[str] = json.loads(str(config["feature-names"]))
    classes: list[str] = json.loads(str(config["classes"]))
    client = ConfigRecord(
        {"client_id": client_id, "site-key": site_key(cfg.token), "dataset-name": dataset_name}
    )

    def failure(reason: str) -> Message:
        error = ConfigRecord({"message": reason[:_MAX_REASON]})
        return Message(content=RecordDict({"client": client, "error": error}), reply_to=msg)

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
    model = build_model(len(feature_names), len(classes), hidden=int(config["hidden-size"]))
    try:
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    except (RuntimeError, KeyError, ValueError) as e:
        return failure(f"the global model does not fit this site's model: {e}")

    server_round = int(config["server-round"])
    started = time.monotonic()
    train_loss = train(
        model,
        X_train,
        y_train,
        epochs=int(config["local-epochs"]),
        lr=float(config["learning-rate"]),
        seed=server_round,  # a different but reproducible batch order each round
    )
    train_seconds = time.monotonic() - started
    test_loss, test_accuracy = evaluate(model, X_test, y_test)

    # Per message (the server may slow one site only), else the run's setting.
    sleep = float(config.get("train-sleep", context.run_config.get("train-sleep", 0.0)))
    if sleep > 0:
        time.sleep(sleep)  # lets failure tests catch a client mid-round

    metrics = MetricRecord(
        {
            "num-examples": len(y_train),  # FedAvg's weighting key
            "train_loss": train_loss,
            "loss": test_loss,
            "accuracy": test_accuracy,
            "train_samples": len(y_train),
            "test_samples": len(y_test),
            "train_seconds": train_seconds,
        }
    )
    content = RecordDict(
        {"arrays": ArrayRecord(model.state_dict()), "metrics": metrics, "client": client}
    )
    return Message(content=content, reply_to=msg)
