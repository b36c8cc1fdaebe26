from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core import hooks, periodic
        from apps.core.scoping import waba_scope_register
        from apps.reports.models import ContactDay, MessageRollup
        from apps.reports.services import contact_days_merge
        from apps.wabas.models import PhoneNumber

        def by_number(qs, waba_id):  # a rollup row is one number's: a bound key sees its WABA's numbers only
            return qs.filter(phone_number_id__in=PhoneNumber.objects.filter(waba_id=waba_id).values("pk"))

        waba_scope_register(MessageRollup, by_number)
        waba_scope_register(ContactDay, by_number)
        hooks.register_contact_merger(contact_days_merge)

        # The rollups catch up with the event log (the hours whose messages moved are recomputed).
        periodic.register("reports.rollups_advance", "apps.reports.tasks.rollups_advance",
                          seconds=settings.REPORTS_ROLLUP_SECONDS)
