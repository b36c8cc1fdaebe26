from django.core.management.base import BaseCommand

from apps.core import services


class Command(BaseCommand):
    help = "Create the demo workspace and admin once; print the login and a fresh sandbox API key."

    def handle(self, *args, **options):
        workspace, user, password, created = services.demo_ensure()
        if created:
            self.stdout.write(f"Created the demo workspace '{workspace.slug}'.")
            self.stdout.write(f"Admin login: {user.username} / {password}")
        else:
            self.stdout.write(f"The demo workspace '{workspace.slug}' is already in place (admin user "
                              f"'{user.username if user else 'admin'}'; its password was printed on the first run, "
                              "reset it with `python manage.py changepassword admin`).")
        _, secret = services.api_key_create(workspace=workspace, name="Demo sandbox key", sandbox=True,
                                            created_by=user)
        self.stdout.write("The demo lives in the Sandbox: its API key, the simulator and the simulated customers "
                          "all act on the sandbox side, which the inbox (/inbox/) opens on while Live is empty.")
        self.stdout.write(f"Sandbox API key: {secret}")
