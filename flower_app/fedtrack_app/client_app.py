"""ClientApp entry point: spawned by a site's SuperNode for every message."""

from clients.torch_client import app

__all__ = ["app"]
