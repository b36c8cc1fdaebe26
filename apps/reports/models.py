"""Reports' rollups: hourly message counts and money per workspace × number × template × campaign ×
category × country × direction × status, and the contacts reached per month with a bit per day (for unique
counts). Kept up to date from the event log (services.rollups_advance) and rebuildable from messages
(rollups_rebuild)."""

from django.db import models

MONEY = {"max_digits": 16, "decimal_places": 4}


class _Counts(models.Model):
    """Message counts and money per workspace × direction × status × number × template × campaign × category
    × country, for one period (the subclass's)."""

    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=8)
    status = models.CharField(max_length=10)
    phone_number_id = models.CharField(max_length=40, blank=True, default="")
    template_id = models.CharField(max_length=40, blank=True, default="")
    campaign_id = models.CharField(max_length=40, blank=True, default="")
    category = models.CharField(max_length=40, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    messages = models.BigIntegerField(default=0)
    charged = models.DecimalField(default=0, **MONEY)  # what was charged (refunded ones included)
    charged_messages = models.BigIntegerField(default=0)
    refunded = models.DecimalField(default=0, **MONEY)
    free_messages = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class MessageRollup(_Counts):
    """Per hour: what the event log moves (services.hour_recompute replaces an hour's rows)."""

    hour = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "hour"], name="rollup_ws_hour")]


class MessageDayRollup(_Counts):
    """The hourly rows summed per UTC day, kept equal to them by hour_recompute: what the reports read (their
    ranges are whole days), 24x fewer rows than the hours."""

    day = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="rollup_ws_day")]


class ContactMonth(models.Model):
    """A contact reached (or heard from) in a month, per direction and dimensions: bit d-1 of `days` is set
    for each day d of the month it was. `unique_contacts` for any range and grouping is a count of distinct
    contact_id over the rows of the range's months whose `days` meet the range's days (selectors), so a
    contact active every day costs one row a month, not thirty. Bits are only ever added (a message's day
    and dimensions never change)."""

    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    month = models.DateField()  # its first day
    contact_id = models.CharField(max_length=40)
    direction = models.CharField(max_length=8)
    phone_number_id = models.CharField(max_length=40, blank=True, default="")
    template_id = models.CharField(max_length=40, blank=True, default="")
    campaign_id = models.CharField(max_length=40, blank=True, default="")
    category = models.CharField(max_length=40, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    days = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["workspace", "month", "contact_id", "direction", "phone_number_id", "template_id",
                    "campaign_id", "category", "country"], name="contact_month_unique")]


class RollupCursor(models.Model):
    """The last event sequence of the workspace the rollups have taken in."""

    workspace = models.OneToOneField("core.Workspace", primary_key=True, on_delete=models.CASCADE, related_name="+")
    sequence = models.BigIntegerField(default=0)
