"""The ServerApp: `app`, and `start_flower_server`, what it runs for one job.

The thin entry the Flower app points at (flower_app/fedtrack_app/server_app.py sets Django up
and imports `app` from here); the job itself is run by the `webapp.serverapp` package.
"""

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from webapp.serverapp.job import start_flower_server

__all__ = ["app", "start_flower_server"]

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    start_flower_server(grid, context)
