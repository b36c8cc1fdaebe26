from django.db import models

from apps.core.ids import PrefixedIdField


class TrackedLink(models.Model):
    """One short link for one recipient of one message: `{{track:URL}}` became REACH_PUBLIC_URL/l/<code>.
    message_id, campaign_id and contact_id are plain ids: the apps that own them sit above this one."""

    id = PrefixedIdField(prefix="lnk")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=32, unique=True)
    url = models.URLField(max_length=2000)
    message_id = models.CharField(max_length=40, blank=True, default="")
    campaign_id = models.CharField(max_length=40, blank=True, default="")
    contact_id = models.CharField(max_length=40, blank=True, default="")
    clicks = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "campaign_id"], name="lnk_ws_campaign"),
            models.Index(fields=["workspace", "message_id"], name="lnk_ws_message"),
        ]

    def __str__(self) -> str:
        return self.code


class LinkClick(models.Model):
    class Agent(models.TextChoices):
        MOBILE = "mobile"
        DESKTOP = "desktop"
        BOT = "bot"
        UNKNOWN = "unknown"

    link = models.ForeignKey(TrackedLink, on_delete=models.CASCADE, related_name="click_rows")
    at = models.DateTimeField()
    agent = models.CharField(max_length=10, choices=Agent.choices, default=Agent.UNKNOWN)

    class Meta:
        indexes = [models.Index(fields=["link", "at"], name="lnkclick_link_at")]
