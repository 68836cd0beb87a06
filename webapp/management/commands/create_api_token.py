from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from webapp.models import ApiToken


class Command(BaseCommand):
    help = "Create a bearer token for a user's scripts. The token is printed once, never stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to tell tokens apart")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        _, key = ApiToken.issue(user, name=options["name"])
        self.stdout.write(key)
