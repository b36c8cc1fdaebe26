from django.urls import path

from apps.console.views import campaigns as cm
from apps.console.views import channels as ch
from apps.console.views import contacts as c
from apps.console.views import settings_pages as s
from apps.console.views import templates_pages as t

urlpatterns = [
    path("contacts/", c.contact_list, name="console-contacts"),
    path("contacts/export.csv", c.contact_export, name="console-contacts-export"),
    path("contacts/import/", c.contact_import, name="console-contacts-import"),
    path("contacts/imports/<str:pk>/", c.contact_import_progress, name="console-contacts-import-progress"),
    path("contacts/<str:pk>/", c.contact_detail, name="console-contact"),
    path("contacts/<str:pk>/consent", c.contact_consent, name="console-contact-consent"),
    path("templates/", t.template_list, name="console-templates"),
    path("templates/new/", t.template_new, name="console-template-new"),
    path("templates/validate", t.template_validate, name="console-template-validate"),
    path("templates/sync", t.template_sync, name="console-template-sync"),
    path("templates/<str:pk>/", t.template_detail, name="console-template"),
    path("campaigns/", cm.campaign_list, name="console-campaigns"),
    path("campaigns/new/", cm.campaign_new, name="console-campaign-new"),
    path("campaigns/audiences/", cm.audience_list, name="console-audiences"),
    path("campaigns/audiences/size", cm.audience_size, name="console-audience-size"),
    path("campaigns/<str:pk>/", cm.campaign_detail, name="console-campaign"),
    path("campaigns/<str:pk>/stats.json", cm.campaign_stats, name="console-campaign-stats"),
    path("campaigns/<str:pk>/<str:action>", cm.campaign_action, name="console-campaign-action"),
    path("settings/", s.settings_home, name="console-settings"),
    path("settings/keys/", s.keys, name="console-keys"),
    path("settings/keys/<str:pk>/revoke", s.key_revoke, name="console-key-revoke"),
    path("settings/webhooks/", s.webhooks, name="console-webhooks"),
    path("settings/webhooks/<str:pk>/", s.webhook_detail, name="console-webhook"),
    path("settings/webhooks/<str:pk>/<str:action>", s.webhook_action, name="console-webhook-action"),
    path("settings/deliveries/<str:pk>/redeliver", s.delivery_redeliver, name="console-redeliver"),
    path("settings/channels/", ch.channels, name="console-channels"),
    path("settings/channels/signup", ch.channels_signup, name="console-channels-signup"),
    path("settings/channels/manual", ch.channels_manual, name="console-channels-manual"),
    path("settings/numbers/<str:pk>/throughput", ch.number_throughput, name="console-number-throughput"),
    path("settings/automation/", ch.automation, name="console-automation"),
    path("settings/automation/<str:action>", ch.automation_action, name="console-automation-action"),
    path("settings/automation/<str:kind>/<str:pk>", ch.automation_item, name="console-automation-item"),
    path("settings/team/", s.team, name="console-team"),
    path("settings/team/<int:pk>", s.team_member, name="console-team-member"),
]
