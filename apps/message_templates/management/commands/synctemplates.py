"""python manage.py synctemplates [--waba WABA_ID …] — pull templates from Meta (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.message_templates.services import template_sync
from apps.wabas.models import Waba


class Command(BaseCommand):
    help = "Sync message templates from Meta for every WABA (or the given ones). Safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument("--waba", action="append", default=[], help="Reach WABA id (waba_…) or Meta WABA id")

    def handle(self, *args, **options):
        wabas = Waba.objects.all().order_by("pk")
        if options["waba"]:
            from django.db.models import Q

            wabas = wabas.filter(Q(pk__in=options["waba"]) | Q(meta_waba_id__in=options["waba"]))
            if not wabas.exists():
                raise CommandError("No such WABA.")
        failed = 0
        for waba in wabas:
            try:
                counts = template_sync(waba=waba)
            except ApplicationError as exc:
                failed += 1
                self.stderr.write(f"{waba.pk} ({waba.meta_waba_id}): {exc.message}")
                continue
            self.stdout.write(f"{waba.pk} ({waba.meta_waba_id}): " +
                              " ".join(f"{k}={v}" for k, v in counts.items()))
        if failed:
            raise CommandError(f"{failed} WABA(s) failed to sync.")
