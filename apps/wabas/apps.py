from django.apps import AppConfig


class WabasConfig(AppConfig):
    name = "apps.wabas"
    label = "wabas"

    def ready(self) -> None:
        from apps.core import hooks
        from apps.wabas import (
            events,  # noqa: F401  (registers the event types and their schemas)
            selectors,
            services,
        )

        hooks.register_workspace_provisioner(services.waba_provision_sandbox)
        hooks.register_waba_resolver(selectors.waba_exists_in)
