from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp import flower


class Command(BaseCommand):
    help = (
        "Register a site's SuperNode public key with the SuperLink (which runs with TLS and "
        "--enable-supernode-auth); only registered SuperNodes may connect."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("public_key", type=Path, help="the site's key.pub (OpenSSH format)")
        parser.add_argument("--name", required=True, help="the site's name, e.g. hospital-x")

    def handle(self, *args, **options) -> None:
        try:
            public_key = options["public_key"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {options['public_key']}: {exc.strerror}") from exc
        try:
            node_id = flower.register_supernode(public_key, options["name"])
        except flower.FlowerError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"registered {options['name']} as node {node_id}")
