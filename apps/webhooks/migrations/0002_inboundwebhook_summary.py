from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboundwebhook",
            name="summary",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
