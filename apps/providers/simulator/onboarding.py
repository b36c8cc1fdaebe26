"""fakemeta's Embedded Signup side: what Meta's Graph API answers while a business connects its WhatsApp
account through Embedded Signup (Meta's JS SDK hands the browser a one-time `code`; the server exchanges it).

Routes (Graph v*):
  GET  /{v}/oauth/access_token?client_id=&client_secret=&code=   -> {"access_token", "token_type"}
  GET  /{v}/debug_token?input_token=                              -> {"data": {"granular_scopes": [...]}}
  GET  /{v}/{waba_id}/phone_numbers                               -> {"data": [{"id", "display_phone_number", ...}]}
  POST /{v}/{phone_number_id}/register  {"messaging_product", "pin"} -> {"success": true}
  POST /{v}/{waba_id}/subscribed_apps                             -> {"success": true}
Admin: POST /_admin/signup {"code", "waba_id", "name", "phone_numbers": [{"id", "display_phone_number",
"verified_name"}]} prepares what one signup will find; GET /_admin/signup shows registrations and
subscriptions. Errors are Graph's envelope (OAuthException, code 100 / 190)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


def _error(status: int, code: int, message: str, kind: str = "OAuthException") -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "code": code,
                              "fbtrace_id": secrets.token_hex(8)}}


@dataclass
class Onboarding:
    app_secret: str = ""
    codes: dict = field(default_factory=dict)  # code -> waba_id
    tokens: dict = field(default_factory=dict)  # access token -> waba_id
    wabas: dict = field(default_factory=dict)  # waba_id -> {"name", "phone_numbers": [...]}
    registered: dict = field(default_factory=dict)  # phone_number_id -> pin
    subscribed: set = field(default_factory=set)

    def prepare(self, *, code: str, waba_id: str, phone_numbers: list, name: str = "") -> None:
        self.codes[str(code)] = str(waba_id)
        self.wabas[str(waba_id)] = {"name": name or f"WABA {waba_id}", "phone_numbers": list(phone_numbers)}

    def state(self) -> dict:
        return {"registered": sorted(self.registered), "subscribed": sorted(self.subscribed)}

    def _waba_of_token(self, bearer: str | None) -> str | None:
        return self.tokens.get(bearer or "")

    def handle(self, *, method: str, parts: list[str], query: dict, bearer: str | None,
               body: dict | None) -> tuple[int, dict] | None:
        """None: not an onboarding route."""
        if len(parts) == 3 and parts[1:] == ["oauth", "access_token"] and method == "GET":
            if self.app_secret and query.get("client_secret") != self.app_secret:
                return _error(400, 1, "Error validating client secret.")
            waba_id = self.codes.pop(query.get("code", ""), None)  # a code is good once
            if waba_id is None:
                return _error(400, 100, "Invalid verification code format.")
            token = "EAAG" + secrets.token_urlsafe(24)
            self.tokens[token] = waba_id
            return 200, {"access_token": token, "token_type": "bearer"}
        if len(parts) == 2 and parts[1] == "debug_token" and method == "GET":
            waba_id = self.tokens.get(query.get("input_token", ""))
            if waba_id is None:
                return _error(400, 190, "Invalid OAuth access token.")
            return 200, {"data": {"is_valid": True, "type": "SYSTEM_USER",
                                  "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                                  "granular_scopes": [
                                      {"scope": "whatsapp_business_management", "target_ids": [waba_id]},
                                      {"scope": "whatsapp_business_messaging", "target_ids": [waba_id]}]}}
        if len(parts) == 3 and parts[2] == "phone_numbers" and method == "GET" and parts[1] in self.wabas:
            if self._waba_of_token(bearer) != parts[1]:
                return _error(401, 190, "Invalid OAuth access token.")
            numbers = [{"quality_rating": "GREEN", "code_verification_status": "VERIFIED",
                        "messaging_limit_tier": "TIER_1K", **n} for n in self.wabas[parts[1]]["phone_numbers"]]
            return 200, {"data": numbers}
        if len(parts) == 3 and parts[2] == "subscribed_apps" and method == "POST" and parts[1] in self.wabas:
            if self._waba_of_token(bearer) != parts[1]:
                return _error(401, 190, "Invalid OAuth access token.")
            self.subscribed.add(parts[1])
            return 200, {"success": True}
        if len(parts) == 3 and parts[2] == "register" and method == "POST":
            waba_id = self._waba_of_token(bearer)
            owned = {str(n["id"]) for n in self.wabas.get(waba_id or "", {}).get("phone_numbers", [])}
            if parts[1] not in owned:
                return _error(401, 190, "Invalid OAuth access token.")
            pin = str((body or {}).get("pin") or "")
            if (body or {}).get("messaging_product") != "whatsapp" or not (len(pin) == 6 and pin.isdigit()):
                return _error(400, 100, "(#100) The parameter pin is required and must be 6 digits.")
            self.registered[parts[1]] = pin
            return 200, {"success": True}
        return None
