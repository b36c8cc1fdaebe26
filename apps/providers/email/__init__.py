"""Email, the outside world's side: sending one mail over SMTP through Django's email backend (text + HTML,
a stable Message-ID, In-Reply-To/References so mail clients thread), reading one raw RFC 822 mail (the stdlib
`email` package), recognising a bounce (a multipart/report delivery-status DSN), and making a mail's HTML safe
to show (nh3, ammonia's allow-list). SMTP answers map once: 4xx and a lost connection are retryable, 5xx is
terminal. The inbound SMTP listener is apps.providers.email.listener."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, getaddresses, parseaddr, parsedate_to_datetime

from django.conf import settings

from apps.providers.base import ProviderError

# --- outbound -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: str  # "<…@…>", stable across retries: the recipient's server drops a repeat
    envelope_from: str  # MAIL FROM: where bounces go (the channel's inbound address when it has one)
    from_address: str
    from_name: str
    to: str
    subject: str
    text: str
    html: str = ""
    reply_to: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    list_unsubscribe: str = ""  # marketing mail: the mailto: customers (and their mail clients) use


@dataclass(frozen=True)
class EmailSendResult:
    provider_message_id: str


def email_message_id(*, message_id: str, from_address: str) -> str:
    """Our message's Message-ID: its id at the sender's domain (the same on every attempt)."""
    domain = from_address.rsplit("@", 1)[-1].strip().lower() or "reach.invalid"
    return f"<{message_id}@{domain}>"


def _smtp_error(code: int | None, text: str) -> ProviderError:
    if code is not None and 400 <= code < 500:
        return ProviderError(code="EMAIL_DEFERRED", message=f"{code} {text}".strip(), upstream_code=code,
                             retryable=True)
    return ProviderError(code="EMAIL_REJECTED", message=f"{code or ''} {text}".strip(), upstream_code=code,
                         retryable=False)


def _decoded(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def email_connection(smtp: dict, *, open_now: bool = False):
    """A connection of Django's email backend (EMAIL_CHANNEL_BACKEND) to the channel's server, for
    email_send. open_now: opened here (a batch reuses one SMTP session for many mails, and closes it);
    failing to open is EMAIL_DEFERRED or EMAIL_REJECTED like a send."""
    from django.core.mail import get_connection

    connection = get_connection(backend=settings.EMAIL_CHANNEL_BACKEND, fail_silently=False, **smtp)
    if open_now:
        try:
            connection.open()
        except smtplib.SMTPResponseException as exc:  # e.g. 535 authentication failed
            raise _smtp_error(exc.smtp_code, _decoded(exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderError(code="EMAIL_DEFERRED", message=f"{type(exc).__name__}: {exc}",
                                retryable=True) from exc
    return connection


def email_send(mail: OutgoingEmail, *, smtp: dict | None = None, connection=None) -> EmailSendResult:
    """Send one mail through Django's email backend with the channel's server (`smtp`, or an open
    `connection` from email_connection). Raises ProviderError: EMAIL_DEFERRED (4xx, connection trouble;
    retryable) or EMAIL_REJECTED (5xx)."""
    from django.core.mail import EmailMultiAlternatives

    headers = {"Message-ID": mail.message_id, "From": formataddr((mail.from_name, mail.from_address))}
    if mail.reply_to:
        headers["Reply-To"] = mail.reply_to
    if mail.in_reply_to:
        headers["In-Reply-To"] = mail.in_reply_to
    if mail.references:
        headers["References"] = " ".join(mail.references)
    if mail.list_unsubscribe:
        headers["List-Unsubscribe"] = f"<{mail.list_unsubscribe}>"
    connection = connection or email_connection(smtp or {})
    message = EmailMultiAlternatives(subject=mail.subject, body=mail.text, from_email=mail.envelope_from,
                                     to=[mail.to], headers=headers, connection=connection)
    if mail.html:
        message.attach_alternative(mail.html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()), (None, b""))
        raise _smtp_error(code, _decoded(text)) from exc
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, authentication, …
        raise _smtp_error(exc.smtp_code, _decoded(exc.smtp_error)) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out: try again later
        raise ProviderError(code="EMAIL_DEFERRED", message=f"{type(exc).__name__}: {exc}", retryable=True) from exc
    return EmailSendResult(provider_message_id=mail.message_id)


# --- inbound ------------------------------------------------------------------------------------------------


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class InboundEmail:
    message_id: str
    from_address: str
    from_name: str
    to: list[str]
    subject: str
    text: str
    html: str  # as sent: sanitise (html_sanitize) before showing it
    in_reply_to: str
    references: list[str]
    date: datetime | None
    attachments: list[Attachment] = field(default_factory=list)
    auto_submitted: bool = False


@dataclass
class BounceReport:
    """A delivery status notification: which of our mails failed, for whom and why."""

    original_message_id: str
    recipient: str
    status: str  # e.g. 5.1.1
    diagnostic: str


_MSGID = re.compile(r"<[^<>\s]+>")


def _ids(value) -> list[str]:
    return _MSGID.findall(str(value or ""))


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _bounce(message: EmailMessage) -> BounceReport | None:
    if message.get_content_type() != "multipart/report" or \
            (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    original, recipient, status, diagnostic = "", "", "", ""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            # Its body is header blocks: the message's, then one per recipient (the stdlib parses them as
            # sub-messages).
            for block in part.get_payload() if part.is_multipart() else []:
                if block.get("Action", "").strip().lower() == "failed" or block.get("Final-Recipient"):
                    recipient = recipient or parseaddr(str(block.get("Final-Recipient", "")).split(";")[-1])[1]
                    status = status or str(block.get("Status", "")).strip()
                    diagnostic = diagnostic or " ".join(str(block.get("Diagnostic-Code", "")).split(";")[-1].split())
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not original:
            if ctype == "message/rfc822":
                inner = part.get_payload()[0] if part.is_multipart() else None
                original = (_ids(inner.get("Message-ID")) or [""])[0] if inner is not None else ""
            else:
                headers = _parse(part.get_content().encode() if isinstance(part.get_content(), str)
                                 else part.get_content())
                original = (_ids(headers.get("Message-ID")) or [""])[0]
    if not original:
        original = (_ids(message.get("In-Reply-To")) or _ids(message.get("References")) or [""])[0]
    if not original:
        return None
    return BounceReport(original_message_id=original, recipient=recipient.lower(), status=status,
                        diagnostic=diagnostic or f"delivery status {status or 'failed'}")


def _text_of(part) -> str:
    try:
        return part.get_content()
    except (LookupError, ValueError):  # an unknown charset: keep what can be read
        return (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")


def email_parse(raw: bytes) -> InboundEmail | BounceReport:
    """One raw RFC 822 mail: a bounce report, or a customer's mail. ValueError when it is not a mail at all
    (no sender)."""
    message = _parse(raw)
    bounce = _bounce(message)
    if bounce is not None:
        return bounce
    name, address = parseaddr(str(message.get("From", "")))
    if "@" not in address:
        raise ValueError("The mail has no From address.")
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = []
    for part in message.iter_attachments():
        if part.get_content_maintype() == "multipart":
            continue
        data = part.get_payload(decode=True) or b""
        attachments.append(Attachment(filename=part.get_filename() or "attachment",
                                      content_type=part.get_content_type(), data=data))
    try:
        date = parsedate_to_datetime(str(message["Date"])) if message.get("Date") else None
        if date is not None and date.tzinfo is None:
            date = None
    except (TypeError, ValueError):
        date = None
    message_id = (_ids(message.get("Message-ID")) or [""])[0]
    if not message_id:  # a mail without one still dedupes: its bytes name it
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@reach.invalid>"
    return InboundEmail(
        message_id=message_id, from_address=address.strip().lower(), from_name=name.strip(),
        to=[a.lower() for _, a in getaddresses([str(v) for v in message.get_all("To", [])]) if "@" in a],
        subject=" ".join(str(message.get("Subject", "")).split())[:998],
        text=_text_of(text_part) if text_part is not None else "",
        html=_text_of(html_part) if html_part is not None else "",
        in_reply_to=(_ids(message.get("In-Reply-To")) or [""])[0], references=_ids(message.get("References")),
        date=date, attachments=attachments,
        auto_submitted=str(message.get("Auto-Submitted", "no")).strip().lower() not in ("", "no"),
    )


def email_compose(*, from_address: str, from_name: str, to: str, subject: str, text: str, html: str = "",
                  message_id: str = "", in_reply_to: str = "", references: list[str] | None = None) -> bytes:
    """A raw mail from parsed fields (a provider's JSON inbound shape goes through the same parser)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(display_name=from_name, addr_spec=from_address) if from_name else from_address
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    message.set_content(text or "")
    if html:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


# --- showing HTML -----------------------------------------------------------------------------------------

# No images: a remote image in a mail reports to its sender who read it, and from where.
_SAFE_TAGS = frozenset(__import__("nh3").ALLOWED_TAGS) - {"img"}


def html_sanitize(html: str) -> str:
    """A mail's HTML made safe to put in the inbox: no scripts, event handlers, styles or remote images;
    links open apart (rel noopener noreferrer nofollow), only http(s) and mailto."""
    import nh3

    if not html:
        return ""
    return nh3.clean(html, tags=set(_SAFE_TAGS), url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow").strip()


def html_to_text(html: str) -> str:
    import nh3

    text = nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</h\d>", "\n", html or ""), tags=set())
    return "\n".join(" ".join(line.split()) for line in html_lib.unescape(text).splitlines()).strip()


_QUOTE_START = re.compile(r"^(on .{3,200} wrote:|-{2,}\s*original message\s*-{2,}|from: .+)$", re.IGNORECASE)


def reply_text(text: str) -> str:
    """What the customer wrote above the quoted mail they replied to."""
    kept = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or _QUOTE_START.match(stripped):
            break
        kept.append(line)
    return "\n".join(kept).strip()
