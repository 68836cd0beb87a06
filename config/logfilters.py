"""Logging filters named by config/settings.py's LOGGING."""

import logging


class NotFlower(logging.Filter):
    """Drops Flower's records: the `flwr` logger prints them itself (its own console handler,
    added when flwr is imported), so through the root handler too they would show twice, in
    a ServerApp's `flwr log` as in the web app's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "flwr" and not record.name.startswith("flwr.")
