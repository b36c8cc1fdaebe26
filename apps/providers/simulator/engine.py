"""The fake Meta's rules (META.md §8), shared by the in-process sandbox provider and the fakemeta HTTP server.

Pure logic over a small state interface (MemoryState for the HTTP server, RedisState for the in-process form
so every worker shares it) and an injectable clock. A call returns (http_status, body, followups): followups
are Meta-shaped webhook payloads to deliver after a delay (statuses, template decisions). Every number is a
SimConfig field, filled from settings (SIMULATOR_*), because Meta changes them quarterly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from apps.providers.base import default_http_status
from apps.providers.simulator.checks import PayloadChecks
from apps.providers.simulator.portfolio import PortfolioLimits
from apps.providers.simulator.rules import (  # noqa: F401  (re-exported: the engine's public names)
    ERROR_DETAILS,
    ERROR_TEXT,
    FREE_FORM_TYPES,
    IN_PROCESS_TOKEN,
    MAGIC_ALWAYS_ERROR,
    MAGIC_ALWAYS_THROTTLED,
    MAGIC_DUPLICATE_STATUSES,
    MAGIC_ECOSYSTEM_LIMIT,
    MAGIC_NEVER_READ,
    MAGIC_NOT_ON_WHATSAPP,
    MAGIC_OUT_OF_ORDER,
    MAGIC_PAIR_LIMITED,
    MAGIC_STOPPED_MARKETING,
    MAGIC_TRANSIENT_ONCE,
    MEDIA_TYPES,
    NAMED,
    PLACEHOLDER_MEDIA,
    POSITIONAL,
    REJECT_TEMPLATE_PREFIX,
    TEMPLATE_NAME,
    Followup,
    MemoryState,
    Result,
    SimConfig,
    SimError,
    _placeholders,
    digits,
    graph_error_body,
    merge_payloads,
    messages_envelope,
    new_numeric_id,
    new_wamid,
    webhook_error,
)


def library_components(name: str, category: str, button_inputs: list) -> list:
    """A stand-in for a template from Meta's template library: its text with {{n}} placeholders, and the
    buttons the caller's library_template_button_inputs describe."""
    if category == "AUTHENTICATION":
        return [{"type": "BODY", "text": "{{1}} is your verification code."},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]
    comps: list = [{"type": "BODY", "text": f"Hi {{{{1}}}}, an update about {name.replace('_', ' ')}: {{{{2}}}}."}]
    buttons = [{"type": str(b.get("type")).upper(), "text": "Open", **({"url": b["url"]["base_url"]}
               if isinstance(b.get("url"), dict) and b["url"].get("base_url") else {})}
               for b in button_inputs if isinstance(b, dict)]
    if buttons:
        comps.append({"type": "BUTTONS", "buttons": buttons})
    return comps


# --- engine -------------------------------------------------------------------------------------------------
class SimulatorEngine(PayloadChecks, PortfolioLimits):
    def __init__(self, *, config: SimConfig | None = None, state=None, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, media_base_url: str = "https://sandbox.invalid",
                 media_secret: str | None = None):
        self.config = config or SimConfig()
        self.state = state if state is not None else MemoryState()
        self.clock = clock
        self.rng = rng or random.Random()
        self.media_base_url = media_base_url.rstrip("/")
        self.media_secret = (media_secret or secrets.token_hex(16)).encode()
        self.default_waba_id = "0"
        self.default_display = "15550000000"

    def configure(self, **changes) -> None:
        self.config = replace(self.config, **changes)

    # -- numbers & auth ---------------------------------------------------------------------------------
    def register_number(self, *, phone_number_id: str, waba_id: str, display_phone_number: str) -> None:
        self.state.set_number(str(phone_number_id), {"waba_id": str(waba_id),
                                                     "display_phone_number": digits(display_phone_number)})

    def number_info(self, phone_number_id: str) -> tuple[str, str]:
        info = self.state.get_number(str(phone_number_id)) or {}
        return info.get("waba_id") or self.default_waba_id, info.get("display_phone_number") or self.default_display

    def check_token(self, access_token: str | None) -> None:
        if not self.config.require_token:
            return
        if not access_token or access_token in self.config.rejected_tokens:
            raise SimError(190, http_status=401)

    def _error(self, exc: SimError) -> Result:
        status = exc.http_status or self.config.http_status_overrides.get(exc.code) or default_http_status(exc.code)
        return Result(int(status), graph_error_body(exc.code, exc.message, exc.details))

    # -- send -------------------------------------------------------------------------------------------
    def send(self, *, phone_number_id: str, body, access_token: str | None = IN_PROCESS_TOKEN,
             endpoint: str | None = None) -> Result:
        try:
            self.check_token(access_token)
            if not isinstance(body, dict):
                raise SimError(100, "Invalid parameter", "The request body must be a JSON object.")
            if body.get("status") == "read" and body.get("message_id"):
                if body.get("messaging_product") != "whatsapp":
                    raise SimError(100, "Invalid parameter", "messaging_product must be whatsapp")
                typing = body.get("typing_indicator")
                if typing is not None:
                    # Meta's typing indicator rides on a read receipt; "text" is its only type.
                    if not isinstance(typing, dict) or typing.get("type") != "text":
                        raise SimError(100, "Invalid parameter", "typing_indicator.type must be text")
                    self.state.incr(f"typing:{phone_number_id}:{body['message_id']}")
                return Result(200, {"success": True})
            marketing = "product_policy" in body
            if endpoint is not None and (endpoint == "marketing_messages") != marketing:
                raise SimError(100, "Invalid parameter", "product_policy belongs to /marketing_messages requests only.")
            return self._send(str(phone_number_id), body, marketing=marketing)
        except SimError as exc:
            return self._error(exc)

    def _send(self, pnid: str, body: dict, marketing: bool = False) -> Result:
        now = self.clock()
        to, mtype = self._validate_envelope(body)
        # Meta: when both are given, `to` wins; a `recipient` alone is a business-scoped user id.
        bsuid = None if body.get("to") else to
        to_digits = digits(to) if bsuid is None else bsuid
        cfg = self.config
        mps = cfg.mps_for(pnid)
        if self.state.take_token(f"mps:{pnid}", mps, max(1.0, mps * cfg.throughput_burst_seconds), now) > 0:
            raise SimError(130429)
        if to_digits == MAGIC_ALWAYS_THROTTLED:
            raise SimError(130429)
        if to_digits == MAGIC_ALWAYS_ERROR:
            raise SimError(131000)
        if to_digits == MAGIC_TRANSIENT_ONCE and self.state.incr(f"transient:{pnid}:{to_digits}") == 1:
            raise SimError(131000)
        if to_digits == MAGIC_PAIR_LIMITED:
            raise SimError(131056)
        if self.is_blocked(pnid, to_digits):
            raise SimError(131009, details="The recipient is blocked by this business number.")
        if cfg.pair_limit_enabled and self.state.take_token(
                f"pair:{pnid}:{to_digits}", cfg.pair_rate_per_second, cfg.pair_burst, now) > 0:
            raise SimError(131056)
        waba_id, display = self.number_info(pnid)
        category = None
        if mtype == "template":
            category = self._check_template(waba_id, body["template"])
            if marketing and category != "marketing":
                raise SimError(131009, details="The Marketing Messages API sends MARKETING templates only.")
            if bsuid is not None and category == "authentication":
                raise SimError(131062, details="Authentication templates cannot be sent to a business-scoped "
                                               "user id.")
            last = self.state.get_window(pnid, to_digits)  # the portfolio's messaging limit (portfolio.py)
            self.portfolio_admit(waba_id=waba_id, user=to_digits, now=now,
                                 in_window=last is not None and now - last <= cfg.window_hours * 3600)
        if marketing:
            if mtype != "template":
                raise SimError(131009, details="The Marketing Messages API sends templates only.")
            if body.get("product_policy") not in ("CLOUD_API_FALLBACK", "STRICT"):
                raise SimError(131009, details="product_policy must be CLOUD_API_FALLBACK or STRICT.")
            self.state.incr("marketing_messages")
        wamid = new_wamid()
        wa_id = to_digits
        response = {"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": wa_id} if bsuid is None else {"input": to, "user_id": bsuid}],
                    "messages": [{"id": wamid}]}
        if mtype == "template":
            response["messages"][0]["message_status"] = "accepted"
        followups = self._statuses(pnid=pnid, waba_id=waba_id, display=display, wamid=wamid, wa_id=wa_id,
                                   mtype=mtype, category=category, body=body, now=now)
        return Result(200, response, followups)

    def _validate_envelope(self, body: dict) -> tuple[str, str]:
        if body.get("messaging_product") != "whatsapp":
            raise SimError(100, "Invalid parameter", "The parameter messaging_product is required and must be "
                                                     "'whatsapp'.")
        if body.get("recipient_type", "individual") not in ("individual", "group"):
            raise SimError(131009, details="recipient_type must be individual or group.")
        to = body.get("to") or body.get("recipient")
        if not to or not isinstance(to, str):
            raise SimError(131008, details="The parameter to is required.")
        if body.get("to"):
            d = digits(to)
            if not (7 <= len(d) <= 15) or re.search(r"[^\d+\-() ]", to):
                raise SimError(100, "Invalid parameter", f"The phone number {to!r} is not valid.")
        mtype = body.get("type") or "text"
        if mtype not in FREE_FORM_TYPES and mtype != "template":
            raise SimError(100, "Invalid parameter", f"Unsupported message type {mtype!r}.")
        obj = body.get(mtype)
        if obj is None:
            raise SimError(131008, details=f"The parameter {mtype} is required.")
        validator = getattr(self, f"_v_{mtype}", None)
        if validator is None and mtype in MEDIA_TYPES:
            self._v_media(mtype, obj)
        elif validator is not None:
            validator(obj)
        return to, mtype

    # -- templates --------------------------------------------------------------------------------------
    def _effective(self, tpl: dict) -> dict:
        """Templates finish review lazily: no timer has to run for the state to move on."""
        if tpl["status"] == "PENDING" and tpl.get("decide_at") is not None and self.clock() >= tpl["decide_at"]:
            tpl = dict(tpl, status=tpl["final_status"], decide_at=None)
            self.state.put_template(tpl)
        return tpl

    def _check_template(self, waba_id: str, obj: dict) -> str | None:
        name, lang = obj["name"], obj["language"]["code"]
        tpl = self.state.get_template(waba_id, name, lang)
        if tpl is None:
            if self.config.strict_templates:
                raise SimError(132001, details=f"template name ({name}) does not exist in {lang}")
            return "marketing"
        tpl = self._effective(tpl)
        status = tpl["status"]
        if status == "PAUSED":
            raise SimError(132015, details=f"Template {name} is paused.")
        if status == "DISABLED":
            raise SimError(132016, details=f"Template {name} is disabled.")
        if status != "APPROVED":
            raise SimError(132001, details=f"template name ({name}) does not exist in {lang} or is not approved")
        named_tpl = tpl.get("parameter_format", "POSITIONAL").upper() == "NAMED"
        for comp_type in ("body", "header"):
            text = tpl.get(f"{comp_type}_text", "")
            positional, named = _placeholders(text)
            sent = []
            for comp in obj.get("components") or []:
                if str(comp.get("type", "")).lower() == comp_type:
                    sent.extend(comp.get("parameters") or [])
            if comp_type == "header" and not positional and not named:
                continue  # media headers are not counted here
            with_names = [p for p in sent if isinstance(p, dict) and p.get("parameter_name")]
            if sent and named_tpl and len(with_names) != len(sent):
                raise SimError(132012, details="Parameter format does not match: the template expects named "
                                               "parameters.")
            if sent and not named_tpl and with_names:
                raise SimError(132012, details="Parameter format does not match: the template expects positional "
                                               "parameters.")
            expected = len(named) if named_tpl else len(positional)
            if len(sent) != expected:
                raise SimError(132000, details=f"{comp_type}: expected {expected} parameters, got {len(sent)}.")
            if named_tpl and {p["parameter_name"] for p in with_names} != named:
                raise SimError(132000, details=f"{comp_type}: parameter names do not match the template.")
        return str(tpl.get("category") or "marketing").lower()

    def create_template(self, *, waba_id: str, body: dict, access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        try:
            self.check_token(access_token)
            if not isinstance(body, dict):
                raise SimError(100)
            name, language = body.get("name"), body.get("language")
            category = str(body.get("category") or "").upper()
            self._need(isinstance(name, str) and bool(TEMPLATE_NAME.match(name)), 100,
                       "name must be lowercase letters, digits and underscores (max 512).")
            self._need(isinstance(language, str) and bool(language), 100, "language is required.")
            self._need(category in ("MARKETING", "UTILITY", "AUTHENTICATION"), 100, "invalid category.")
            components = body.get("components") or []
            self._need(isinstance(components, list), 100, "components must be a list.")
            if body.get("library_template_name"):  # Meta's template library supplies the content
                self._need(category in ("UTILITY", "AUTHENTICATION"), 100,
                           "Template library templates are UTILITY or AUTHENTICATION.")
                components = components or library_components(str(body["library_template_name"]), category,
                                                              body.get("library_template_button_inputs") or [])
            texts = {str(c.get("type", "")).upper(): c.get("text", "") for c in components if isinstance(c, dict)}
            self._need(category == "AUTHENTICATION" or "BODY" in texts, 100, "a BODY component is required.")
            self._need(len(texts.get("BODY", "")) <= 1024, 100, "BODY is longer than 1024 characters.")
            existing = self.state.get_template(str(waba_id), name, language)
            if existing is not None and existing.get("waba_id") == str(waba_id):
                raise SimError(100, details=f"Content in this language already exists for {name}.",
                               message="Invalid parameter")
        except SimError as exc:
            return self._error(exc)
        now = self.clock()
        rejected = name.startswith(REJECT_TEMPLATE_PREFIX)
        pf = str(body.get("parameter_format") or "POSITIONAL").upper()
        tpl = {"id": new_numeric_id(), "waba_id": str(waba_id), "name": name, "language": language,
               "category": category, "status": "PENDING", "final_status": "REJECTED" if rejected else "APPROVED",
               "decide_at": now + self.config.approve_delay, "parameter_format": pf, "components": components,
               "body_text": texts.get("BODY", ""), "header_text": texts.get("HEADER", "") or ""}
        self.state.put_template(tpl)
        event = self.template_event_payload(tpl, "REJECTED" if rejected else "APPROVED",
                                            reason="INVALID_FORMAT" if rejected else "NONE")
        return Result(200, {"id": tpl["id"], "status": "PENDING", "category": category,
                            **({"components": components} if body.get("library_template_name") else {})},
                      [Followup(self.config.approve_delay, event)])

    def delete_template(self, *, waba_id: str, name: str, access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        try:
            self.check_token(access_token)
        except SimError as exc:
            return self._error(exc)
        if not self.state.delete_templates(str(waba_id), name):
            return self._error(SimError(100, details=f"Template {name} not found."))
        return Result(200, {"success": True})

    def set_template_status(self, *, waba_id: str, name: str, language: str, status: str) -> Result:
        """Admin/test hook: pause, disable, approve... a template and emit its status webhook."""
        tpl = self.state.get_template(waba_id, name, language)
        if tpl is None:
            return Result(404, graph_error_body(100, details="no such template"))
        tpl = dict(tpl, status=status.upper(), decide_at=None)
        self.state.put_template(tpl)
        other = None
        if status.upper() == "PAUSED":
            other = {"title": "FIRST_PAUSE", "description": "Your template was paused because of low quality."}
        elif status.upper() == "DISABLED":
            other = {"title": "DISABLED", "description": "Your template was disabled."}
        return Result(200, {"success": True},
                      [Followup(0.0, self.template_event_payload(tpl, status.upper(), other_info=other))])

    def template_event_payload(self, tpl: dict, event: str, reason: str = "NONE", other_info=None) -> dict:
        value = {"event": event, "message_template_id": int(tpl["id"]), "message_template_name": tpl["name"],
                 "message_template_language": tpl["language"], "reason": reason,
                 "message_template_category": tpl["category"]}
        if event == "REJECTED":
            value["rejection_info"] = {"reason": "Templates named reject_* are always rejected by the simulator.",
                                       "recommendation": "Rename the template."}
        if other_info:
            value["other_info"] = other_info
        return {"object": "whatsapp_business_account", "entry": [{
            "id": tpl["waba_id"], "time": int(self.clock()),
            "changes": [{"value": value, "field": "message_template_status_update"}]}]}

    def list_templates(self, *, waba_id: str, limit: int = 25, after: str | None = None,
                       access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        try:
            self.check_token(access_token)
        except SimError as exc:
            return self._error(exc)
        items = [self._effective(t) for t in self.state.list_templates(str(waba_id))]
        start = int(after) if after and str(after).isdigit() else 0
        page = items[start:start + max(1, min(int(limit or 25), 1000))]
        data = [{"id": t["id"], "name": t["name"], "language": t["language"], "status": t["status"],
                 "category": t["category"], "parameter_format": t["parameter_format"],
                 "components": t["components"]} for t in page]
        body: dict = {"data": data, "paging": {"cursors": {"before": str(start)}}}
        if start + len(page) < len(items):
            body["paging"]["cursors"]["after"] = str(start + len(page))
        return Result(200, body)

    # -- statuses ---------------------------------------------------------------------------------------
    def _pricing(self, mtype: str, category: str | None, in_window: bool) -> dict:
        if mtype != "template":
            return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                    "category": "service"}
        if category == "utility" and in_window and self.config.free_utility_in_window:
            return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                    "category": "utility"}
        return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category or "marketing"}

    def _statuses(self, *, pnid, waba_id, display, wamid, wa_id, mtype, category, body, now) -> list[Followup]:
        cfg = self.config
        # A recipient known only by its BSUID gets statuses without a phone (META.md §3.5).
        base = {"id": wamid, "recipient_user_id": wa_id} if not wa_id.isdigit() else {"id": wamid, "recipient_id": wa_id}
        if body.get("biz_opaque_callback_data"):
            base["biz_opaque_callback_data"] = body["biz_opaque_callback_data"]
        last = self.state.get_window(pnid, wa_id)
        in_window = last is not None and now - last <= cfg.window_hours * 3600

        route = (waba_id, pnid, display)

        def status_followup(delay: float, status: str, **extra) -> Followup:
            st = dict(base, status=status, timestamp=str(int(now + delay)), **extra)
            return Followup(delay, route=route, status=st)

        fail_code = None
        if wa_id == MAGIC_NOT_ON_WHATSAPP:
            fail_code = 131026
        elif wa_id == MAGIC_ECOSYSTEM_LIMIT:
            fail_code = 131049
        elif wa_id == MAGIC_STOPPED_MARKETING:
            fail_code = 131050
        elif mtype in FREE_FORM_TYPES and cfg.enforce_window and not in_window:
            fail_code = 131047
        elif mtype in MEDIA_TYPES and body[mtype].get("id") and self.state.get_media(str(body[mtype]["id"])) is None:
            fail_code = 131053
        if fail_code is not None:
            return [status_followup(cfg.sent_delay, "failed", errors=[webhook_error(fail_code)])]
        pricing = self._pricing(mtype, category, in_window)
        out = [status_followup(cfg.sent_delay, "sent", pricing=pricing)]
        skip_delivered = self.rng.random() < cfg.skip_delivered_probability
        will_read = wa_id != MAGIC_NEVER_READ and self.rng.random() < cfg.read_probability
        if not will_read:
            skip_delivered = False
        out_of_order = wa_id == MAGIC_OUT_OF_ORDER or self.rng.random() < cfg.out_of_order_probability
        read_delay = max(cfg.read_delay, cfg.delivered_delay)
        if out_of_order and will_read:
            skip_delivered = False
            delivered_at, read_at = read_delay + cfg.delivered_delay, read_delay
        else:
            delivered_at, read_at = cfg.delivered_delay, read_delay
        if not skip_delivered:
            out.append(status_followup(delivered_at, "delivered", pricing=pricing))
        if will_read:
            extra = {"pricing": pricing} if skip_delivered else {}
            out.append(status_followup(read_at, "read", **extra))
        if wa_id == MAGIC_DUPLICATE_STATUSES or self.rng.random() < cfg.duplicate_probability:
            out = out + [Followup(f.delay + 0.01, route=f.route, status=f.status) for f in out]
        return out

    # -- block_users --------------------------------------------------------------------------------------
    def block_users(self, *, phone_number_id: str, body, block: bool = True,
                    access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        """POST/DELETE /{phone-number-id}/block_users. A blocked customer gets no messages: Meta's code for
        sending to one is not in its documented table, so the simulator refuses such a send with 131009."""
        try:
            self.check_token(access_token)
            self._need(isinstance(body, dict) and body.get("messaging_product") == "whatsapp", 100,
                       "messaging_product must be whatsapp.")
            users = body.get("block_users")
            self._need(isinstance(users, list) and 1 <= len(users) <= 1000 and
                       all(isinstance(u, dict) and u.get("user") for u in users), 131008,
                       "block_users must list 1 to 1000 {user} objects.")
        except SimError as exc:
            return self._error(exc)
        done = []
        for u in users:
            user = str(u["user"])
            key = digits(user) if user.startswith("+") or user.isdigit() else user
            self.state.set_window(str(phone_number_id), f"blocked:{key}", 1.0 if block else 0.0)
            entry = {"input": user}
            entry["wa_id" if key.isdigit() else "user_id"] = key
            done.append(entry)
        return Result(200, {"messaging_product": "whatsapp",
                            "block_users": {"added_users" if block else "removed_users": done}})

    def is_blocked(self, phone_number_id: str, key: str) -> bool:
        return bool(self.state.get_window(str(phone_number_id), f"blocked:{key}"))

    # -- account webhooks: the portfolio's messaging limit, throughput ----------------------------------------
    def business_capability_payload(self, *, waba_id: str, max_daily_conversations_per_business,
                                    max_phone_numbers_per_business: int = 2) -> dict:
        """Meta's business_capability_update: the business portfolio's messaging limit (since Oct 2025 shared
        by all of its numbers)."""
        return {"object": "whatsapp_business_account", "entry": [{"id": str(waba_id), "time": int(self.clock()),
                "changes": [{"field": "business_capability_update", "value": {
                    "max_daily_conversations_per_business": max_daily_conversations_per_business,
                    "max_phone_numbers_per_business": max_phone_numbers_per_business}}]}]}

    def phone_quality_payload(self, *, phone_number_id: str, event: str, current_limit: str | None = None) -> dict:
        """Meta's phone_number_quality_update (ONBOARDING, THROUGHPUT_UPGRADE, …)."""
        waba_id, display = self.number_info(str(phone_number_id))
        value = {"display_phone_number": display, "event": event}
        if current_limit:
            value["current_limit"] = current_limit
        return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "time": int(self.clock()),
                "changes": [{"field": "phone_number_quality_update", "value": value}]}]}

    # -- Marketing Messages API click tracking ------------------------------------------------------------
    def link_click_payload(self, *, phone_number_id: str, wamid: str, wa_id: str | None = None,
                           click_component: str = "cta", timestamp: float | None = None) -> dict:
        """Meta's `marketing_messages_link_click` user action (messages field) for a message sent through
        the Marketing Messages API with activity sharing."""
        waba_id, display = self.number_info(str(phone_number_id))
        action = {"action_type": "marketing_messages_link_click", "timestamp": str(int(timestamp or self.clock())),
                  "id": wamid, "marketing_messages_link_click_data": {
                      "click_component": click_component, "click_id": new_numeric_id(12),
                      "tracking_token": f"tt_{wamid[-8:]}"}}
        value: dict = {"user_actions": [action]}
        if wa_id:
            value["contacts"] = [{"wa_id": digits(wa_id), "profile": {"name": "Sandbox Customer"}}]
            action["from"] = digits(wa_id)
        return messages_envelope(waba_id=waba_id, phone_number_id=str(phone_number_id), display_phone_number=display,
                                 value=value)

    # -- inbound ----------------------------------------------------------------------------------------
    def inbound(self, *, phone_number_id: str, waba_id: str | None, display_phone_number: str | None,
                from_phone: str, message: dict, name: str | None = None, bsuid: str | None = None,
                timestamp: float | None = None, username: str | None = None,
                parent_bsuid: str | None = None) -> tuple[str, dict]:
        """A customer writes: records the CSW and returns (wamid, Meta-shaped inbound payload)."""
        if waba_id or display_phone_number:
            known_waba, known_display = self.number_info(phone_number_id)
            self.register_number(phone_number_id=phone_number_id, waba_id=waba_id or known_waba,
                                 display_phone_number=display_phone_number or known_display)
        waba_id, display = self.number_info(phone_number_id)
        at = timestamp if timestamp is not None else self.clock()
        wa_id = digits(from_phone) if from_phone else None
        message = dict(message or {})
        mtype = message.pop("type", None) or next((k for k in message if k not in ("context", "referral")), "text")
        if mtype in MEDIA_TYPES:
            message[mtype] = self._inbound_media(str(phone_number_id), mtype, dict(message.get(mtype) or {}))
        wamid = new_wamid()
        msg = {"id": wamid, "timestamp": str(int(at)), "type": mtype}
        if wa_id:
            msg["from"] = wa_id
        if bsuid:
            msg["from_user_id"] = bsuid
        msg.update(message)
        contact: dict = {"profile": {"name": name or "Sandbox Customer"}}
        if username:
            contact["profile"]["username"] = username
        if wa_id:
            contact["wa_id"] = wa_id
        if bsuid:
            contact["user_id"] = bsuid
        if parent_bsuid:
            contact["parent_user_id"] = parent_bsuid
        # The window is the pair's: by phone, and by BSUID too (a reply may name either).
        for key in (wa_id, bsuid):
            if key:
                self.state.set_window(str(phone_number_id), key, at)
        payload = messages_envelope(waba_id=waba_id, phone_number_id=str(phone_number_id),
                                    display_phone_number=display, value={"contacts": [contact], "messages": [msg]})
        return wamid, payload

    def _inbound_media(self, pnid: str, kind: str, obj: dict) -> dict:
        """A simulated customer's media without an id gets a small placeholder file in the media store, so
        the receive road can fetch it like real inbound media (GET /{media-id}, then the bearer download)."""
        if obj.get("id"):
            return obj
        mime = obj.get("mime_type") or PLACEHOLDER_MEDIA[kind][0]
        data = PLACEHOLDER_MEDIA[kind][1]
        res = self.upload_media(phone_number_id=pnid, data=data, mime_type=mime, filename=obj.get("filename", ""),
                                access_token=IN_PROCESS_TOKEN)
        record = self.state.get_media(res.body["id"])
        obj.pop("link", None)
        # Webhooks carry sha256 in base64 (OAS "Image Message" example); GET /{media-id} answers hex.
        sha_b64 = base64.b64encode(bytes.fromhex(record["sha256"])).decode()
        obj.update(id=res.body["id"], mime_type=mime, sha256=sha_b64)
        if kind == "audio":
            obj.setdefault("voice", False)
        return obj

    def typing_shown(self, *, phone_number_id: str, wamid: str) -> int:
        """How many typing indicators the business showed on a customer's message (tests, the simulator UI)."""
        return self.state.peek(f"typing:{phone_number_id}:{wamid}")

    def age_window(self, *, phone_number_id: str, wa_id: str, hours: float) -> None:
        self.state.set_window(str(phone_number_id), digits(wa_id), self.clock() - hours * 3600)

    # -- media ------------------------------------------------------------------------------------------
    def upload_media(self, *, phone_number_id: str, data: bytes, mime_type: str, filename: str = "",
                     access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        try:
            self.check_token(access_token)
            self._need(bool(data), 131008, "The parameter file is required.")
            self._need(bool(mime_type), 131008, "The parameter type is required.")
        except SimError as exc:
            return self._error(exc)
        media_id = new_numeric_id(16)
        record = {"id": media_id, "mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(),
                  "file_size": len(data), "filename": filename, "phone_number_id": str(phone_number_id),
                  "expires_at": self.clock() + self.config.media_id_ttl}
        self.state.put_media(media_id, record, data)
        return Result(200, {"id": media_id})

    def _sign_media(self, media_id: str, exp: int) -> str:
        return hmac.new(self.media_secret, f"{media_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]

    def get_media(self, *, media_id: str, access_token: str | None = IN_PROCESS_TOKEN) -> Result:
        try:
            self.check_token(access_token)
        except SimError as exc:
            return self._error(exc)
        record = self.state.get_media(str(media_id))
        if record is None or record["expires_at"] < self.clock():
            return Result(404, graph_error_body(100, "Invalid parameter",
                                                f"Unsupported get request. Object with ID '{media_id}' does not exist."))
        exp = int(self.clock() + self.config.media_url_ttl)
        url = f"{self.media_base_url}/media-download/{media_id}?exp={exp}&sig={self._sign_media(media_id, exp)}"
        return Result(200, {"messaging_product": "whatsapp", "url": url, "mime_type": record["mime_type"],
                            "sha256": record["sha256"], "file_size": record["file_size"], "id": media_id})

    def download(self, *, media_id: str, exp: str, sig: str, access_token: str | None) -> tuple[int, bytes, str]:
        """(status, bytes, content type) for a media URL; 401 without the bearer, 404 once expired."""
        if not access_token or access_token in self.config.rejected_tokens:
            return 401, b'{"error":{"message":"Unauthorized","code":190}}', "application/json"
        try:
            exp_i = int(exp)
        except (TypeError, ValueError):
            return 404, b"", "text/plain"
        if exp_i < self.clock() or not hmac.compare_digest(self._sign_media(media_id, exp_i), sig or ""):
            return 404, b"", "text/plain"
        record = self.state.get_media(media_id)
        data = self.state.get_media_data(media_id)
        if record is None or data is None:
            return 404, b"", "text/plain"
        return 200, data, record["mime_type"]
