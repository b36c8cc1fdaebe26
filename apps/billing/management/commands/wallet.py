from django.core.management.base import BaseCommand, CommandError

from apps.billing import services
from apps.billing.events import wallet_state
from apps.core.errors import ApplicationError
from apps.core.models import Workspace


class Command(BaseCommand):
    help = "Top up or adjust a workspace's wallet: wallet WORKSPACE topup|adjust AMOUNT --note TEXT [--sandbox]."

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="workspace slug or id")
        parser.add_argument("action", choices=["topup", "adjust", "show"])
        parser.add_argument("amount", nargs="?", default="", help="decimal; an adjustment may be negative")
        parser.add_argument("--note", default="")
        parser.add_argument("--sandbox", action="store_true", help="the sandbox twin's wallet")

    def handle(self, *args, workspace, action, amount, note, sandbox, **options):
        ws = Workspace.objects.filter(is_sandbox=False, slug=workspace).first() or \
            Workspace.objects.filter(is_sandbox=False, pk=workspace).first()
        if ws is None:
            raise CommandError(f"No workspace {workspace!r}")
        if sandbox:
            ws = ws.sandbox
        try:
            if action == "topup":
                services.wallet_topup(workspace=ws, amount=amount, note=note, created_by="cli")
            elif action == "adjust":
                services.wallet_adjust(workspace=ws, amount=amount, note=note, created_by="cli")
        except ApplicationError as exc:
            raise CommandError(exc.message)
        except ArithmeticError:
            raise CommandError(f"Not an amount: {amount!r}")
        state = wallet_state(services.wallet_get_or_create(workspace=ws))
        self.stdout.write(" ".join(f"{k}={v}" for k, v in state.items()))
