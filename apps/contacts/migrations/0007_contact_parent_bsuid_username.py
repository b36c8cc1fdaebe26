from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contacts", "0006_contact_waba_and_consent_without_row")]

    operations = [
        migrations.AddField(model_name="contact", name="parent_bsuid",
                            field=models.CharField(blank=True, default="", max_length=160)),
        migrations.AddField(model_name="contact", name="username",
                            field=models.CharField(blank=True, default="", max_length=64)),
    ]
