from django.core.management.base import BaseCommand, CommandError

from apps.core import services
from apps.core.errors import ApplicationError
from apps.core.models import Workspace


class Command(BaseCommand):
    help = "Create an API key for a workspace; prints the secret alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="workspace slug or id")
        parser.add_argument("--sandbox", action="store_true", help="an ak_test_ key for the sandbox twin")
        parser.add_argument("--scopes", default="", help="comma-separated scopes (default: all)")
        parser.add_argument("--waba", default="", help="bind the key to one WABA (waba_… id)")
        parser.add_argument("--name", default="CLI key")

    def handle(self, *args, workspace, sandbox, scopes, waba, name, **options):
        ws = Workspace.objects.filter(is_sandbox=False).filter(slug=workspace).first() or \
            Workspace.objects.filter(is_sandbox=False, pk=workspace).first()
        if ws is None:
            raise CommandError(f"No workspace {workspace!r}")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()] or None
        try:
            key, secret = services.api_key_create(workspace=ws, name=name, sandbox=sandbox, scopes=scope_list,
                                                  waba_id=waba)
        except ApplicationError as exc:
            raise CommandError(exc.message)
        services.audit_record(action="cli.create_api_key", workspace=ws, target_type="apikey", target_id=key.pk)
        self.stderr.write(f"Created {key.name} ({key.pk}) with scopes {', '.join(key.scopes)}")
        self.stdout.write(secret)
