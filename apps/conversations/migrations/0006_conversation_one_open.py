"""One not-resolved conversation per (contact, number, channel): resolve the duplicates that exist (the
newest open one stays), then the constraint."""

import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models


def resolve_duplicates(apps, schema_editor):
    Conversation = apps.get_model("conversations", "Conversation")
    seen: set[tuple] = set()
    older: list[str] = []
    rows = (Conversation.objects.exclude(state="resolved").order_by("-created_at", "-id")
            .values_list("id", "contact_id", "phone_number_id", "channel_kind"))
    for pk, contact_id, number_id, kind in rows.iterator(chunk_size=5000):
        key = (contact_id, number_id or "", kind)
        if key in seen:
            older.append(pk)
        else:
            seen.add(key)
    for i in range(0, len(older), 1000):
        Conversation.objects.filter(pk__in=older[i:i + 1000]).update(state="resolved")


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0005_search_indexes_per_workspace'),
        ('conversations', '0005_message_queued_expiry_index'),
        ('core', '0001_initial'),
        ('wabas', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(resolve_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='conversation',
            constraint=models.UniqueConstraint(models.F('contact'), django.db.models.functions.comparison.Coalesce('phone_number', models.Value('')), models.F('channel_kind'), condition=models.Q(('state', 'resolved'), _negated=True), name='cnv_one_open'),
        ),
    ]
