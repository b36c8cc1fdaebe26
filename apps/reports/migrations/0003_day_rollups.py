"""MessageDayRollup: the hourly rollups summed per UTC day, what the reports read. Filled from the hours
already rolled up, so an upgrade needs no `reports rebuild`."""

import django.db.models.deletion
from django.db import migrations, models


COLS = "workspace_id, direction, status, phone_number_id, template_id, campaign_id, category, country"


def sum_days(apps, schema_editor):
    hourly, daily = (apps.get_model("reports", m)._meta.db_table for m in ("MessageRollup", "MessageDayRollup"))
    day = "(hour AT TIME ZONE 'UTC')::date" if schema_editor.connection.vendor == "postgresql" else "date(hour)"
    schema_editor.execute(
        f"INSERT INTO {daily} ({COLS}, day, messages, charged, charged_messages, refunded, free_messages) "  # noqa: S608
        f"SELECT {COLS}, {day}, sum(messages), sum(charged), sum(charged_messages), sum(refunded), "
        f"sum(free_messages) FROM {hourly} GROUP BY {COLS}, {day}")


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_membership_sandbox_preferred'),
        ('reports', '0002_contact_months'),
    ]

    operations = [
        migrations.CreateModel(
            name='MessageDayRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('direction', models.CharField(max_length=8)),
                ('status', models.CharField(max_length=10)),
                ('phone_number_id', models.CharField(blank=True, default='', max_length=40)),
                ('template_id', models.CharField(blank=True, default='', max_length=40)),
                ('campaign_id', models.CharField(blank=True, default='', max_length=40)),
                ('category', models.CharField(blank=True, default='', max_length=40)),
                ('country', models.CharField(blank=True, default='', max_length=2)),
                ('messages', models.BigIntegerField(default=0)),
                ('charged', models.DecimalField(decimal_places=4, default=0, max_digits=16)),
                ('charged_messages', models.BigIntegerField(default=0)),
                ('refunded', models.DecimalField(decimal_places=4, default=0, max_digits=16)),
                ('free_messages', models.BigIntegerField(default=0)),
                ('day', models.DateField()),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.workspace')),
            ],
            options={
                'indexes': [models.Index(fields=['workspace', 'day'], name='rollup_ws_day')],
            },
        ),
        migrations.RunPython(sum_days, migrations.RunPython.noop),
    ]
