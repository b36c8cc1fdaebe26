from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.core.models import Workspace
from apps.wabas.services import waba_connect


class Command(BaseCommand):
    help = "Register a live WABA and one phone number by hand; prints the pn_ id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="workspace slug or id")
        parser.add_argument("--waba-id", required=True, help="Meta's WhatsApp Business Account id")
        parser.add_argument("--phone-number-id", required=True, help="Meta's phone number id")
        parser.add_argument("--display-phone-number", required=True, help="E.164, e.g. +15551234567")
        parser.add_argument("--access-token", required=True, help="system-user access token (stored encrypted)")
        parser.add_argument("--name", default="")
        parser.add_argument("--throughput-mps", type=int, default=None)

    def handle(self, *args, workspace, waba_id, phone_number_id, display_phone_number, access_token, name,
               throughput_mps, **options):
        ws = Workspace.objects.filter(is_sandbox=False, slug=workspace).first() or \
            Workspace.objects.filter(is_sandbox=False, pk=workspace).first()
        if ws is None:
            raise CommandError(f"No workspace {workspace!r}")
        try:
            number = waba_connect(workspace=ws, meta_waba_id=waba_id, phone_number_id=phone_number_id,
                                  display_phone_number=display_phone_number, access_token=access_token, name=name)
            if throughput_mps:
                from apps.wabas.services import phone_number_set_throughput

                phone_number_set_throughput(phone_number=number, mps=throughput_mps)
        except ApplicationError as exc:
            raise CommandError(exc.message)
        self.stderr.write(f"Connected WABA {number.waba_id} number {number.display_phone_number}")
        self.stdout.write(number.pk)
