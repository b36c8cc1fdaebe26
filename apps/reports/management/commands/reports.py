from django.core.management.base import BaseCommand, CommandError

from apps.core.models import Workspace
from apps.reports import services


class Command(BaseCommand):
    help = ("reports rebuild [--workspace SLUG]: recompute the rollups from messages (idempotent); "
            "reports advance: take in the event log now (what the periodic job does).")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["rebuild", "advance"])
        parser.add_argument("--workspace", default="", help="a live workspace's slug or id (with its sandbox)")

    def handle(self, *args, action, workspace, **options):
        if action == "advance":
            self.stdout.write(f"Took in {services.rollups_advance()} events")
            return
        targets = None
        if workspace:
            live = Workspace.objects.filter(is_sandbox=False, slug=workspace).first() or \
                Workspace.objects.filter(is_sandbox=False, pk=workspace).first()
            if live is None:
                raise CommandError(f"No workspace {workspace!r}")
            targets = [live, *Workspace.objects.filter(sandbox_of=live)]
        hours = sum(services.rollups_rebuild(workspace=ws) for ws in targets) if targets else services.rollups_rebuild()
        self.stdout.write(f"Rebuilt {hours} hours")
