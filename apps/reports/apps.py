from django.apps import AppConfig
from django.db.backends.signals import connection_created


class _BitOr:
    """bit_or(integer) for SQLite (the embedded default), as PostgreSQL has it: the reports' unique-contact
    counts OR a contact's days together."""

    def __init__(self) -> None:
        self.value: int | None = None

    def step(self, value) -> None:
        if value is not None:
            self.value = (self.value or 0) | int(value)

    def finalize(self) -> int | None:
        return self.value


def _sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("bit_or", 1, _BitOr)


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self) -> None:
        from django.conf import settings

        connection_created.connect(_sqlite_functions, dispatch_uid="reports.sqlite_functions")

        from apps.core import hooks, periodic
        from apps.core.scoping import waba_scope_register
        from apps.reports.models import ContactMonth, MessageDayRollup, MessageRollup
        from apps.reports.services import contact_months_merge
        from apps.wabas.models import PhoneNumber

        def by_number(qs, waba_id):  # a rollup row is one number's: a bound key sees its WABA's numbers only
            return qs.filter(phone_number_id__in=PhoneNumber.objects.filter(waba_id=waba_id).values("pk"))

        waba_scope_register(MessageRollup, by_number)
        waba_scope_register(MessageDayRollup, by_number)
        waba_scope_register(ContactMonth, by_number)
        hooks.register_contact_merger(contact_months_merge)

        # The rollups catch up with the event log (the hours whose messages moved are recomputed).
        periodic.register("reports.rollups_advance", "apps.reports.tasks.rollups_advance",
                          seconds=settings.REPORTS_ROLLUP_SECONDS)
