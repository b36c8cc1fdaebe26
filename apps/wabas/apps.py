from django.apps import AppConfig


class WabasConfig(AppConfig):
    name = "apps.wabas"
    label = "wabas"
