"""The failure taxonomy, stated once: every error code Meta's Cloud API documents (META.md §2.2, Meta's
"Error codes" page) -> Reach's stable `code` (API.md error.code), a stable lower-case `reason`, a plain
sentence a person understands, the next action, and the retry policy.

Everything that explains a failure reads this table: the provider error mapping (providers.base), the
API's `error.reason` / `error.action`, the inbox bubble and the campaign report's failures by reason.
Reach's own failures (not from Meta) have rows here too, keyed by their code.

Retry policies:
- `no`       terminal: fix something first (the action says what);
- `backoff`  transient: the dispatcher retries with backoff (Retry-After, else its schedule);
- `growing`  131049 only: Meta holds marketing back for this person; the message is sent again on a growing
             schedule (settings.PER_USER_MARKETING_RETRY_HOURS) while its campaign is valid, else it fails;
- `later`    retryable only after something changes on Meta's side (a paused template unpaused, a flow
             unthrottled): the dispatcher does not retry on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

NO, BACKOFF, GROWING, LATER = "no", "backoff", "growing", "later"


@dataclass(frozen=True)
class Failure:
    code: str  # Reach's error code (API.md error.code), stable
    reason: str  # Reach's reason (error.reason), stable, lower case
    sentence: str  # what happened, for a person
    action: str  # what to do next (error.action)
    retry: str = NO
    http_status: int = 400  # what the simulator answers (Meta: "do not branch on HTTP status")
    retry_after: float | None = None  # seconds before the first retry, for `backoff`
    not_on_whatsapp: bool = False  # the SMS fallback applies


def _f(code, reason, sentence, action, retry=NO, http_status=400, retry_after=None, not_on_whatsapp=False):
    return Failure(code, reason, sentence, action, retry, http_status, retry_after, not_on_whatsapp)


_TOKEN = _f("AUTH_FAILED", "access_token_invalid", "Meta refused the access token: it expired or was revoked.",
            "Reconnect the WhatsApp account (or paste a new system-user token) in the admin.", http_status=401)
_PERMISSION = _f("PERMISSION_DENIED", "permission_denied",
                 "The app lacks a permission this call needs (whatsapp_business_messaging or _management).",
                 "Grant the app the WhatsApp permissions in Meta Business Settings, then reconnect.",
                 http_status=403)
_INVALID = _f("INVALID_REQUEST", "invalid_request", "Meta rejected the request as malformed.",
              "Check the message fields against the error details; this is a bug if Reach validated it.")
_TEMPLATE_PARAMS = _f("TEMPLATE_REJECTED_UPSTREAM", "template_parameters_invalid",
                      "The template's variables did not fit what Meta approved (count, format or length).",
                      "Compare the variables with the approved template and send again.")
_UNAVAILABLE = _f("UPSTREAM_UNAVAILABLE", "meta_unavailable", "Meta's service was briefly unavailable.",
                  "Nothing: Reach retries automatically.", BACKOFF, 503, 5.0)
_RESTRICTED = _f("ACCOUNT_RESTRICTED", "account_restricted",
                 "Meta restricted or locked this WhatsApp Business account for a policy violation.",
                 "Read the notice in WhatsApp Manager and appeal or fix the violation; sending is blocked "
                 "until Meta lifts it.", http_status=403)
_MEDIA_UPLOAD = _f("MEDIA_ERROR", "media_upload_failed",
                   "Meta could not fetch or accept the media (bad link, wrong type or too large).",
                   "Check that the link is public https and the file type and size are allowed, then resend.")
_REGISTRATION = _f("REGISTRATION_FAILED", "phone_registration_failed",
                   "Registering the phone number with the Cloud API failed.",
                   "Finish or redo the number's registration (two-step PIN) in WhatsApp Manager.")

META_FAILURES: dict[int, Failure] = {
    # Authorization
    0: _TOKEN,
    190: _TOKEN,
    3: _f("PERMISSION_DENIED", "capability_missing", "The app has no access to this API method.",
          "Check the app's WhatsApp product setup and permissions in Meta's App Dashboard.", http_status=500),
    10: _PERMISSION,
    # 200-299: API permission (answered by META_FAILURES_RANGE below)
    # Throttling
    4: _f("APP_RATE_LIMITED", "app_rate_limited", "The app made too many Graph API calls.",
          "Nothing: Reach slows down and retries; lasting trouble means raising the app's call limit.",
          BACKOFF, 400, 60.0),
    80007: _f("WABA_RATE_LIMITED", "waba_rate_limited", "This WhatsApp Business account hit Meta's call limit.",
              "Nothing: Reach retries later.", BACKOFF, 400, 60.0),
    130429: _f("UPSTREAM_RATE_LIMITED", "rate_limited", "The number's message throughput (per second) was reached.",
               "Nothing: Reach paces and retries. Lower the campaign speed if it keeps happening.",
               BACKOFF, 429, 1.0),
    131048: _f("SPAM_RATE_LIMITED", "spam_rate_limited",
               "Meta limited this number because many recipients blocked or reported its messages.",
               "Pause marketing, check quality in WhatsApp Manager, and send only to people who opted in."),
    131056: _f("PAIR_RATE_LIMITED", "pair_rate_limited", "Too many messages went to this person in a short time.",
               "Nothing: Reach waits and retries; space out messages to one person.", BACKOFF, 400, 4.0),
    133016: _f("REGISTRATION_RATE_LIMITED", "registration_rate_limited",
               "Too many register/deregister attempts for this number.",
               "Wait before registering the number again.", BACKOFF, 400, 60.0),
    131064: _f("MESSAGING_LIMIT_REACHED", "messaging_limit_reached",
               "Meta lowered this business's messaging limit after template classification violations.",
               "Review the templates Meta re-categorised; sending outside the window waits for the limit."),
    # Integrity
    368: _RESTRICTED,
    131031: _RESTRICTED,
    130497: _f("COUNTRY_RESTRICTED", "country_restricted",
               "This business may not message people in the recipient's country.",
               "Do not send to this country, or ask Meta to review the restriction.", http_status=403),
    # Other errors
    1: _f("UPSTREAM_ERROR", "meta_unknown_error", "Meta reported an unknown error.",
          "Nothing: Reach retries a few times; if it persists, check Meta's status page.", BACKOFF, 500, 2.0),
    2: _UNAVAILABLE,
    33: _f("INVALID_REQUEST", "phone_number_id_invalid", "The sender phone number id does not exist or was deleted.",
           "Reconnect the number in the admin."),
    100: _INVALID,
    131008: _f("INVALID_REQUEST", "required_parameter_missing", "A required field was missing from the request.",
               "Fill in the field named in the error details and send again."),
    131009: _f("INVALID_REQUEST", "parameter_invalid", "A field's value was not valid for Meta.",
               "Correct the field named in the error details and send again."),
    130472: _f("MARKETING_EXPERIMENT", "marketing_experiment",
               "Meta kept this marketing message back: the person is in Meta's marketing experiment group.",
               "Nothing to fix; reach the person another way or send a utility message."),
    131000: _f("UPSTREAM_ERROR", "meta_unknown_error", "Something went wrong at Meta.",
               "Nothing: Reach retries a few times; if it persists, check Meta's status page.", BACKOFF, 500, 2.0),
    131005: _PERMISSION,
    131016: _UNAVAILABLE,
    131021: _f("RECIPIENT_IS_SENDER", "recipient_is_sender", "The recipient is the sending number itself.",
               "Send to the customer's number, not your own."),
    131026: _f("RECIPIENT_NOT_ON_WHATSAPP", "recipient_not_on_whatsapp",
               "The person cannot receive WhatsApp messages (no WhatsApp, an old app, or terms not accepted).",
               "Reach them another way (SMS fallback) and check the number.", not_on_whatsapp=True),
    131030: _f("RECIPIENT_NOT_ALLOWED", "recipient_not_in_allow_list",
               "A test number may only message numbers on its allow list.",
               "Add the recipient to the allow list in Meta's App Dashboard, or use a production number."),
    131037: _f("DISPLAY_NAME_NOT_APPROVED", "display_name_not_approved",
               "The number's display name is not approved yet.",
               "Wait for display-name approval in WhatsApp Manager (or fix and resubmit it)."),
    131042: _f("PAYMENT_ISSUE", "payment_issue", "Meta refused the message because of a billing problem.",
               "Add or fix the payment method in Meta Business Settings."),
    131045: _f("CERTIFICATE_INVALID", "certificate_invalid", "The number's certificate is missing or wrong.",
               "Re-register the phone number to refresh its certificate."),
    131047: _f("OUTSIDE_24H_WINDOW", "reengagement_window_closed",
               "More than 24 hours passed since the person last wrote, so only a template may be sent.",
               "Send an approved template to restart the conversation."),
    131049: _f("MARKETING_LIMITED", "per_user_marketing_limit",
               "Meta held this marketing message back: the person already got many marketing messages.",
               "Nothing now: Reach sends it again later while the campaign is valid; send fewer marketing "
               "messages to this person.", GROWING),
    131050: _f("USER_STOPPED_MARKETING", "user_stopped_marketing",
               "The person turned off marketing messages from this business.",
               "Do not send marketing to them; utility messages still go."),
    131051: _f("UNSUPPORTED_MESSAGE_TYPE", "unsupported_message_type", "WhatsApp does not support this message type.",
               "Send a supported type."),
    131052: _f("MEDIA_ERROR", "media_download_failed", "The person's media could not be downloaded from WhatsApp.",
               "Ask the person to send the file again (under 100 MB)."),
    131053: _MEDIA_UPLOAD,
    131055: _f("INVALID_REQUEST", "method_not_allowed", "Meta does not allow this method on that endpoint.",
               "This is a bug in the integration; report it."),
    131057: _f("UPSTREAM_UNAVAILABLE", "account_in_maintenance", "The business account is in maintenance mode.",
               "Nothing: Reach retries shortly (it happens for a minute during a throughput upgrade).",
               BACKOFF, 503, 60.0),
    131062: _f("RECIPIENT_NOT_SUPPORTED", "bsuid_recipient_not_supported",
               "This message cannot go to a person known only by a business-scoped user id.",
               "Use the person's phone number (authentication templates always need it)."),
    131063: _f("MARKETING_DISABLED", "marketing_disabled", "Marketing templates are turned off for this account on the "
               "Cloud API.", "Turn on the Marketing Messages API or send the template from an enabled account."),
    132000: _TEMPLATE_PARAMS,
    132001: _f("TEMPLATE_REJECTED_UPSTREAM", "template_not_found",
               "Meta has no approved template with that name in that language.",
               "Sync templates, check the name and language, and wait for approval.", http_status=404),
    132005: _f("TEMPLATE_REJECTED_UPSTREAM", "template_text_too_long",
               "With the variables filled in, the template text became too long.",
               "Shorten the variables and send again."),
    132007: _f("TEMPLATE_REJECTED_UPSTREAM", "template_format_policy",
               "The filled-in template broke Meta's formatting policy.",
               "Remove characters Meta does not allow in variables (new lines, tabs, many spaces)."),
    132008: _TEMPLATE_PARAMS,
    132012: _f("TEMPLATE_REJECTED_UPSTREAM", "template_parameter_format_mismatch",
               "The variables were named where the template expects numbers, or the reverse.",
               "Send variables in the template's format (a list for {{1}}, an object for named)."),
    132015: _f("TEMPLATE_PAUSED", "template_paused", "Meta paused this template because of low quality.",
               "Wait for it to unpause (3 h, then 6 h) or improve it; its campaigns are paused meanwhile.", LATER),
    132016: _f("TEMPLATE_DISABLED", "template_disabled", "Meta disabled this template after repeated low quality.",
               "Create a new template; this one cannot be sent again."),
    132068: _f("FLOW_BLOCKED", "flow_blocked", "The flow is blocked by Meta.", "Fix the flow in WhatsApp Manager."),
    132069: _f("FLOW_THROTTLED", "flow_throttled", "The flow is throttled (10 messages an hour while in review).",
               "Send it later.", LATER, 400, 360.0),
    133000: _REGISTRATION,
    133004: _f("UPSTREAM_UNAVAILABLE", "meta_unavailable", "Meta's server was temporarily unavailable.",
               "Nothing: Reach retries automatically.", BACKOFF, 503, 5.0),
    133005: _REGISTRATION,
    133006: _REGISTRATION,
    133008: _REGISTRATION,
    133009: _REGISTRATION,
    133010: _f("PHONE_NOT_REGISTERED", "phone_not_registered", "The sending number is not registered with the "
               "Cloud API.", "Register the number (with its two-step PIN) and send again."),
    133015: _REGISTRATION,
    135000: _f("UPSTREAM_USER_ERROR", "meta_user_error", "Meta refused the request with a generic user error.",
               "Check the request's fields and media; contact Meta support if it persists."),
}

_API_PERMISSION = _f("PERMISSION_DENIED", "permission_denied",
                     "The app lacks a permission this call needs.",
                     "Grant the missing permission to the app in Meta Business Settings, then reconnect.",
                     http_status=403)

# Reach's own failures (not Meta's), keyed by Reach's code.
REACH_FAILURES: dict[str, Failure] = {
    "MESSAGE_EXPIRED": _f("MESSAGE_EXPIRED", "message_expired",
                          "The message waited past its validity (the campaign's window or the send's age limit).",
                          "Send it again if it still matters, or extend the campaign's validity."),
    "UPSTREAM_UNAVAILABLE": _f("UPSTREAM_UNAVAILABLE", "meta_unreachable", "Reach could not reach Meta.",
                               "Nothing: Reach retries automatically.", BACKOFF),
    "MEDIA_DOWNLOAD_FAILED": _f("MEDIA_DOWNLOAD_FAILED", "media_download_failed",
                                "The person's media could not be downloaded from WhatsApp.",
                                "Ask the person to send the file again."),
    "TEMPLATE_NOT_APPROVED": _f("TEMPLATE_NOT_APPROVED", "template_not_approved",
                                "The template was no longer approved when the message was due (paused, disabled "
                                "or being deleted).",
                                "Wait for the template to be approved again (or use another), then resend."),
}

UNKNOWN = _f("UPSTREAM_ERROR", "unknown", "The message failed for a reason Meta did not explain.",
             "Check the error details; contact support with the message id if it repeats.")


def failure_for_meta_code(code: int | None) -> Failure | None:
    """The row of a Meta error code, or None for a code Meta does not document."""
    if code is None:
        return None
    row = META_FAILURES.get(code)
    if row is None and 200 <= code <= 299:
        return _API_PERMISSION
    return row


def failure_explain(*, code: str | None, upstream_code: int | None) -> Failure:
    """The row for a stored failure: by Meta's code when there is one, else by Reach's code."""
    return failure_for_meta_code(upstream_code) or REACH_FAILURES.get(code or "") or UNKNOWN


def failure_public(*, code: str | None, upstream_code: int | None) -> dict:
    """The `reason`, `description` and `action` of error objects (API, events, inbox, reports)."""
    row = failure_explain(code=code, upstream_code=upstream_code)
    return {"reason": row.reason, "description": row.sentence, "action": row.action}


_RETRY_WORDS = {NO: "no", BACKOFF: "yes, with backoff", GROWING: "yes, on a growing schedule inside the validity window",
                LATER: "no (waits for a change at Meta)"}


def failures_table_markdown() -> str:
    """The taxonomy as a Markdown table (code → Reach code → reason → action → retried), for notes and docs:
    `python manage.py failures_table`. Meta's 200–299 permission range is one row."""
    lines = ["| Meta code | Reach code | reason | sentence | action | retried |", "|---|---|---|---|---|---|"]

    def row(label: str, f: Failure) -> str:
        cells = [label, f"`{f.code}`", f"`{f.reason}`", f.sentence, f.action, _RETRY_WORDS[f.retry]]
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    for code in sorted(META_FAILURES):
        lines.append(row(str(code), META_FAILURES[code]))
    lines.append(row("200–299", _API_PERMISSION))
    return "\n".join(lines) + "\n"
