"""Print the failure taxonomy (apps.providers.failures) as a Markdown table."""

from django.core.management.base import BaseCommand

from apps.providers.failures import failures_table_markdown


class Command(BaseCommand):
    help = "Every Meta error code Reach knows -> Reach code, reason, sentence, action and retry policy (Markdown)."

    def handle(self, *args, **options):
        self.stdout.write(failures_table_markdown(), ending="")
