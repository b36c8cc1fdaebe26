"""ContactDay (a row per contact, day and dimensions) becomes ContactMonth (a row per contact, month and
dimensions, a bit per day): the same facts in up to 31x fewer rows, so unique_contacts over 10M messages
answers in milliseconds. The days already counted are carried over."""

import django.db.models.deletion
from django.db import migrations, models


DIMS = ("workspace_id", "contact_id", "direction", "phone_number_id", "template_id", "campaign_id", "category",
        "country")


def carry_days(apps, schema_editor):
    ContactDay, ContactMonth = apps.get_model("reports", "ContactDay"), apps.get_model("reports", "ContactMonth")
    if schema_editor.connection.vendor == "postgresql":
        cols = ", ".join(DIMS)
        schema_editor.execute(
            f"INSERT INTO {ContactMonth._meta.db_table} ({cols}, month, days) "  # noqa: S608
            f"SELECT {cols}, date_trunc('month', day)::date, bit_or(1::bigint << (extract(day FROM day)::int - 1)) "
            f"FROM {ContactDay._meta.db_table} GROUP BY {cols}, date_trunc('month', day)")
        return
    months: dict[tuple, int] = {}
    for row in ContactDay.objects.values(*DIMS, "day").iterator():
        key = (*(row[d] for d in DIMS), row["day"].replace(day=1))
        months[key] = months.get(key, 0) | (1 << (row["day"].day - 1))
    ContactMonth.objects.bulk_create(
        [ContactMonth(**dict(zip(DIMS, key[:-1], strict=True)), month=key[-1], days=days)
         for key, days in months.items()], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_membership_sandbox_preferred'),
        ('reports', '0001_rollups_and_contact_days'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContactMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField()),
                ('contact_id', models.CharField(max_length=40)),
                ('direction', models.CharField(max_length=8)),
                ('phone_number_id', models.CharField(blank=True, default='', max_length=40)),
                ('template_id', models.CharField(blank=True, default='', max_length=40)),
                ('campaign_id', models.CharField(blank=True, default='', max_length=40)),
                ('category', models.CharField(blank=True, default='', max_length=40)),
                ('country', models.CharField(blank=True, default='', max_length=2)),
                ('days', models.BigIntegerField(default=0)),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.workspace')),
            ],
        ),
        migrations.AddConstraint(
            model_name='contactmonth',
            constraint=models.UniqueConstraint(fields=('workspace', 'month', 'contact_id', 'direction', 'phone_number_id', 'template_id', 'campaign_id', 'category', 'country'), name='contact_month_unique'),
        ),
        migrations.RunPython(carry_days, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='ContactDay',
        ),
    ]
