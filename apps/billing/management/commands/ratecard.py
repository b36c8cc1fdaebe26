from datetime import date

from django.core.management.base import BaseCommand, CommandError

from apps.billing import services
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = ("ratecard import FILE --effective YYYY-MM-DD: store Meta's published rate-card CSV (the card, or its "
            "volume tiers) effective from that date.")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["import"])
        parser.add_argument("file")
        parser.add_argument("--effective", required=True, help="YYYY-MM-DD")

    def handle(self, *args, action, file, effective, **options):
        try:
            on = date.fromisoformat(effective)
        except ValueError:
            raise CommandError(f"--effective must be YYYY-MM-DD, not {effective!r}")
        try:
            with open(file, encoding="utf-8-sig") as fh:
                text = fh.read()
        except OSError as exc:
            raise CommandError(str(exc))
        try:
            count = services.ratecard_import(text=text, effective=on)
        except ApplicationError as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"Imported {count} prices effective {on.isoformat()}")
