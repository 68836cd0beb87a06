from django.core.management.base import BaseCommand, CommandError

from webapp.models import ApiToken


class Command(BaseCommand):
    help = (
        "Revoke a bearer token by its prefix (the first 8 characters, e.g. ft_AbC12). "
        "The token answers 401 from the next request on."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("prefix", help="the token's first characters, as listed by --list")
        parser.add_argument("--user", default="", help="only tokens of this username")

    def handle(self, *args, **options) -> None:
        prefix = options["prefix"]
        if len(prefix) < 4:
            raise CommandError("give at least the first 4 characters of the token")
        # The prefix column holds 8 characters; a longer argument is a whole key or more.
        tokens = ApiToken.objects.filter(prefix__startswith=prefix[:8], revoked=False)
        if options["user"]:
            tokens = tokens.filter(user__username=options["user"])
        matches = list(tokens.select_related("user"))
        if not matches:
            raise CommandError(f"no active token starts with {prefix[:8]!r}")
        if len(matches) > 1:
            owners = ", ".join(sorted(f"{t.prefix} ({t.user})" for t in matches))
            raise CommandError(f"{len(matches)} tokens match; be more precise: {owners}")
        token = matches[0]
        ApiToken.objects.filter(pk=token.pk).update(revoked=True)
        self.stdout.write(f"revoked {token.prefix}… of {token.user} ({token.name or 'unnamed'})")
