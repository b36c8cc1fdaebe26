from django.db import models

from apps.core.ids import PrefixedIdField


class Waba(models.Model):
    """A WhatsApp Business Account. Sandbox workspaces get a simulated one (is_simulated)."""

    TENANT_WABA_PATH = "id"

    id = PrefixedIdField(prefix="waba")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="wabas")
    meta_waba_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_simulated = models.BooleanField(default=False)
    # Meta's Marketing Messages API: MARKETING templates go to /{phone-number-id}/marketing_messages.
    marketing_messages_enabled = models.BooleanField(default=False)
    # Meta's business portfolio: since Oct 2025 the messaging limit is the portfolio's, shared by all of its
    # numbers (WABAs with the same business_id in a workspace; blank = the WABA stands alone).
    business_id = models.CharField(max_length=64, blank=True, default="")
    access_token_encrypted = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "WABA"

    def __str__(self) -> str:
        return self.name or self.meta_waba_id


class PhoneNumber(models.Model):
    TENANT_WABA_PATH = "waba_id"

    class Quality(models.TextChoices):
        GREEN = "GREEN"
        YELLOW = "YELLOW"
        RED = "RED"
        NA = "NA"

    class Tier(models.TextChoices):
        TIER_250 = "TIER_250"
        TIER_1K = "TIER_1K"
        TIER_2K = "TIER_2K"
        TIER_10K = "TIER_10K"
        TIER_100K = "TIER_100K"
        TIER_UNLIMITED = "TIER_UNLIMITED"

    id = PrefixedIdField(prefix="pn")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="phone_numbers")
    waba = models.ForeignKey(Waba, on_delete=models.CASCADE, related_name="phone_numbers")
    meta_phone_number_id = models.CharField(max_length=64, unique=True)
    display_phone_number = models.CharField(max_length=20)
    verified_name = models.CharField(max_length=200, blank=True)
    quality_rating = models.CharField(max_length=10, choices=Quality.choices, default=Quality.GREEN)
    messaging_tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.TIER_1K)
    throughput_mps = models.PositiveIntegerField(default=80)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.display_phone_number


class SocialAccount(models.Model):
    """A Facebook Page (Messenger) or an Instagram professional account connected beside the WABAs: the
    sender of one channel's messages and the receiver of its webhooks (`object` page / instagram). The
    Page access token is stored encrypted, like a WABA's. A sandbox workspace's accounts are simulated
    (fakemeta's social module answers them)."""

    # Bound keys see the accounts connected to their WABA (waba is optional: unbound accounts are the
    # workspace's, invisible to a bound key, failing closed).
    TENANT_WABA_PATH = "waba_id"

    class Channel(models.TextChoices):
        MESSENGER = "messenger"
        INSTAGRAM = "instagram"

    id = PrefixedIdField(prefix="sac")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="social_accounts")
    waba = models.ForeignKey(Waba, null=True, blank=True, on_delete=models.SET_NULL, related_name="social_accounts")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    page_id = models.CharField(max_length=64)  # the Facebook Page (Instagram accounts are linked to one too)
    ig_user_id = models.CharField(max_length=64, blank=True, default="")  # Instagram only
    name = models.CharField(max_length=200, blank=True, default="")
    access_token_encrypted = models.TextField(blank=True, default="")
    is_simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Meta addresses webhooks by the Page id (Messenger) or the Instagram account id: one owner each.
            models.UniqueConstraint(fields=["channel", "page_id"], condition=models.Q(channel="messenger"),
                                    name="uniq_social_messenger_page"),
            models.UniqueConstraint(fields=["channel", "ig_user_id"], condition=models.Q(channel="instagram"),
                                    name="uniq_social_instagram_user"),
        ]

    def __str__(self) -> str:
        return self.name or self.meta_account_id

    @property
    def meta_account_id(self) -> str:
        """The id Meta's webhooks carry in entry.id and the Send API is called on."""
        return self.ig_user_id if self.channel == self.Channel.INSTAGRAM else self.page_id
class EmailChannel(models.Model):
    """A workspace's email channel: the address it writes from, the SMTP server it writes through (blank host:
    the EMAIL_* settings), and where customers' mail comes in (the SMTP listener accepts mail for
    inbound_address, or any address at inbound_domain; a provider posts it to /webhooks/email/<inbound_token>).

    Its mail rides on `phone_number`'s queue and WABA like the number's SMS: the dispatcher, the WABA binding
    of keys and the tenant checks are the ones every message already has."""

    TENANT_WABA_PATH = "phone_number__waba_id"

    class Security(models.TextChoices):
        NONE = "none"
        STARTTLS = "starttls"
        SSL = "ssl"

    id = PrefixedIdField(prefix="emc")
    workspace = models.OneToOneField("core.Workspace", on_delete=models.CASCADE, related_name="email_channel")
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="email_channels")
    from_address = models.EmailField(max_length=254)
    from_name = models.CharField(max_length=200, blank=True, default="")
    smtp_host = models.CharField(max_length=255, blank=True, default="")
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_username = models.CharField(max_length=255, blank=True, default="")
    smtp_password_encrypted = models.TextField(blank=True, default="")
    smtp_security = models.CharField(max_length=10, choices=Security.choices, default=Security.NONE)
    # Lower-cased; unique across workspaces, since the listener routes mail by its recipient.
    inbound_address = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    inbound_domain = models.CharField(max_length=253, null=True, blank=True, unique=True)
    inbound_token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.from_address
