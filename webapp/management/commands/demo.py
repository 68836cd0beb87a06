"""`python manage.py demo`: the platform with three local demo sites, until Ctrl-C."""

import os
import secrets
import signal
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from clients.flower_env import VENV_BIN
from config.env import env_int
from devstack.demo_data import write_demo_sites
from devstack.processes import CLI_CONNECTION, LocalFederation, write_cli_connection
from webapp.models import Connection


class Command(BaseCommand):
    help = "Start a SuperLink, three demo hospital sites and the web app on 127.0.0.1."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=env_int("PORT", 8000, minimum=1))
        parser.add_argument(
            "--superlink-port", type=int, default=env_int("SUPERLINK_PORT", 9093, minimum=1)
        )
        parser.add_argument(
            "--site-port",
            type=int,
            default=env_int("SITE_PORT", 5001, minimum=1),
            help="client API port of the first site; the others take the next ports",
        )
        parser.add_argument(
            "--supernode-port",
            type=int,
            default=env_int("SUPERNODE_PORT", 9101, minimum=1),
            help="local port of the first site's SuperNode; the others take the next ports",
        )

    def handle(self, *args, **options) -> None:
        state_dir = Path(settings.VAR_DIR) / "demo"
        superlink = f"127.0.0.1:{options['superlink_port']}"
        if superlink != settings.FLOWER_SUPERLINK:
            raise CommandError(
                f"FLOWER_SUPERLINK={settings.FLOWER_SUPERLINK} but the demo SuperLink listens on "
                f"{superlink}: set FLOWER_SUPERLINK={superlink} or --superlink-port"
            )
        call_command("migrate", interactive=False, verbosity=0)
        password = self._demo_user()
        sites = write_demo_sites(
            state_dir / "sites",
            superlink,
            [options["site_port"] + i for i in range(3)],
            [options["supernode_port"] + i for i in range(3)],
        )
        self._register(sites)
        flwr_home = Path(settings.VAR_DIR) / "flwr"
        write_cli_connection(flwr_home, CLI_CONNECTION, superlink)

        stack = LocalFederation(state_dir, env=self._secret_env())
        # Ctrl-C and `kill` both end the demo cleanly, even when started in the background
        # (where a shell leaves SIGINT ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            self.stdout.write("Starting the SuperLink …")
            stack.start_superlink(options["superlink_port"])
            site_services = [(site, stack.start_site(site)) for site in sites]
            self.stdout.write("Starting three demo sites (client API + SuperNode each) …")
            for site, service in site_services:
                stack.wait_for_site(site, service)
            web = stack.start_web(options["port"])
            self._banner(web.address, superlink, sites, password, state_dir, flwr_home)
            while True:  # a process that dies is reported and restarted; the rest go on
                for event in stack.keep_alive():
                    self.stdout.write(f"{time.strftime('%H:%M:%S')} {event}")
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping every process the demo started …")
        finally:
            stack.stop()

    def _secret_env(self) -> dict[str, str]:
        """The demo's own secret, made once (settings.DEMO_SECRET_KEY_FILE): its web app, a
        restart of it and `manage.py` next to it all sign with it. A SECRET_KEY given in the
        environment wins."""
        if os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE"):
            return {}
        path = Path(settings.DEMO_SECRET_KEY_FILE)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(50) + "\n")
        return {"SECRET_KEY_FILE": str(path)}

    def _demo_user(self) -> str | None:
        """The user `demo`: password from DEMO_PASSWORD, or a new one printed once."""
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username="demo")
        password = os.environ.get("DEMO_PASSWORD")
        if password:
            # A new hash (new salt) of the same password would end every session of `demo`.
            if not user.check_password(password):
                user.set_password(password)
        elif created or not user.has_usable_password():
            password = secrets.token_urlsafe(9)
            user.set_password(password)
        user.save()
        return password

    def _register(self, sites) -> None:
        owner = get_user_model().objects.get(username="demo")
        for site in sites:
            Connection.objects.update_or_create(
                owner=owner,
                name=site.name,
                defaults={"ip": site.host, "port": site.port, "token": site.token},
            )

    def _banner(self, web_url, superlink, sites, password, state_dir, flwr_home) -> None:
        flwr = f"FLWR_HOME={flwr_home} {VENV_BIN / 'flwr'}"
        lines = [
            "",
            "FedTrack demo is running. A process that dies is restarted; Ctrl-C stops everything.",
            f"  Web app     {web_url}",
            f"  SuperLink   {superlink} (Control + Fleet API, insecure, loopback only)",
        ]
        lines += [f"  Site        {s.name}: client API http://{s.host}:{s.port}" for s in sites]
        login = f"demo / {password}" if password else "demo / (unchanged; set DEMO_PASSWORD)"
        lines += [
            f"  Login       {login}",
            f"  Logs        {state_dir / 'logs'}",
            f"  Flower CLI  {flwr} ls {CLI_CONNECTION}",
            f"              {flwr} log RUN_ID {CLI_CONNECTION} --show",
            "",
        ]
        self.stdout.write("\n".join(lines))
