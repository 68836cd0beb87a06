"""A whole federation on one machine, for `manage.py demo`, the integration tests and `make bench`.

Not part of the deployed platform: `demo_data` writes the demo sites (shards of a real clinical
dataset, each with its site.toml), `processes` starts and stops the SuperLink, the sites and the
web app as child processes. Everything binds 127.0.0.1.
"""
