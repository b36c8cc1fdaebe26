"""The fake Meta's per-type checks of a send body (META.md §8): Meta's error codes and details for each
malformed field. Mixed into SimulatorEngine."""

from __future__ import annotations

from apps.providers.simulator.rules import SimError


class PayloadChecks:
    @staticmethod
    def _need(cond: bool, code: int, details: str) -> None:
        if not cond:
            raise SimError(code, details=details)

    def _v_text(self, obj) -> None:
        self._need(isinstance(obj, dict) and isinstance(obj.get("body"), str) and obj["body"] != "", 131008,
                   "The parameter text['body'] is required.")
        self._need(len(obj["body"]) <= 4096, 131009, "text['body'] is longer than 4096 characters.")

    def _v_media(self, kind: str, obj) -> None:
        self._need(isinstance(obj, dict), 131009, f"{kind} must be an object.")
        has_id, has_link = bool(obj.get("id")), bool(obj.get("link"))
        self._need(has_id or has_link, 131008, f"The parameter {kind}['id'] or {kind}['link'] is required.")
        self._need(not (has_id and has_link), 131009, f"Give only one of {kind}['id'] and {kind}['link'].")
        if has_link:
            self._need(str(obj["link"]).startswith(("https://", "http://")), 131009, f"{kind}['link'] is not a URL.")
        if obj.get("caption") is not None:
            self._need(kind in ("image", "video", "document"), 131009, f"{kind} does not take a caption.")
            self._need(len(str(obj["caption"])) <= 1024, 131009, "caption is longer than 1024 characters.")

    def _v_location(self, obj) -> None:
        self._need(isinstance(obj, dict) and "latitude" in obj and "longitude" in obj, 131008,
                   "location['latitude'] and location['longitude'] are required.")
        try:
            lat, lon = float(obj["latitude"]), float(obj["longitude"])
        except (TypeError, ValueError):
            raise SimError(131009, details="latitude/longitude must be numbers.")
        self._need(-90 <= lat <= 90 and -180 <= lon <= 180, 131009, "latitude/longitude out of range.")

    def _v_reaction(self, obj) -> None:
        self._need(isinstance(obj, dict) and obj.get("message_id"), 131008, "reaction['message_id'] is required.")
        self._need(isinstance(obj.get("emoji", ""), str), 131009, "reaction['emoji'] must be a string.")

    def _v_contacts(self, obj) -> None:
        self._need(isinstance(obj, list) and 1 <= len(obj) <= 5, 131009, "contacts must hold 1 to 5 contacts.")

    def _v_interactive(self, obj) -> None:
        self._need(isinstance(obj, dict) and obj.get("type"), 131008, "interactive['type'] is required.")
        itype = obj["type"]
        action = obj.get("action") or {}
        body_text = (obj.get("body") or {}).get("text", "")
        header = obj.get("header") or {}
        if header.get("type") == "text":
            self._need(len(header.get("text", "")) <= 60, 131009, "header text is longer than 60 characters.")
        self._need(len((obj.get("footer") or {}).get("text", "")) <= 60, 131009, "footer is longer than 60.")
        if itype == "button":
            buttons = action.get("buttons") or []
            self._need(1 <= len(buttons) <= 3, 131009, "interactive buttons: 1 to 3 buttons.")
            titles = [((b.get("reply") or {}).get("title") or "") for b in buttons]
            ids = [((b.get("reply") or {}).get("id") or "") for b in buttons]
            self._need(all(0 < len(t) <= 20 for t in titles), 131009, "button title must be 1-20 characters.")
            self._need(len(set(titles)) == len(titles), 131009, "button titles must be unique.")
            self._need(all(0 < len(i) <= 256 for i in ids), 131009, "button id must be 1-256 characters.")
            self._need(0 < len(body_text) <= 1024, 131009, "body text must be 1-1024 characters.")
        elif itype == "list":
            sections = action.get("sections") or []
            rows = [r for s in sections for r in (s.get("rows") or [])]
            self._need(1 <= len(sections) <= 10, 131009, "list: 1 to 10 sections.")
            self._need(1 <= len(rows) <= 10, 131009, "list: 1 to 10 rows in all sections.")
            self._need(0 < len(action.get("button") or "") <= 20, 131009, "list button label must be 1-20.")
            self._need(all(0 < len(r.get("title") or "") <= 24 for r in rows), 131009, "row title must be 1-24.")
            self._need(all(len(r.get("description") or "") <= 72 for r in rows), 131009, "row description > 72.")
            self._need(all(0 < len(r.get("id") or "") <= 200 for r in rows), 131009, "row id must be 1-200.")
            self._need(0 < len(body_text) <= 4096, 131009, "body text must be 1-4096 characters.")
        elif itype == "cta_url":
            params = action.get("parameters") or {}
            self._need(0 < len(params.get("display_text") or "") <= 20, 131009, "display_text must be 1-20.")
            self._need(str(params.get("url", "")).startswith(("https://", "http://")), 131009, "url is required.")
        elif itype == "location_request_message":
            self._need(action.get("name") == "send_location", 131009, "action.name must be send_location.")
            self._need(0 < len(body_text) <= 1024, 131009, "body text must be 1-1024 characters.")
        elif itype == "flow":
            params = action.get("parameters") or {}
            self._need(action.get("name") == "flow", 131009, "action.name must be flow.")
            self._need(bool(params.get("flow_id") or params.get("flow_name")), 131008, "flow_id or flow_name is required.")
            self._need(0 < len(params.get("flow_cta") or "") <= 30, 131009, "flow_cta must be 1-30 characters.")
            self._need(params.get("flow_action", "navigate") in ("navigate", "data_exchange"), 131009,
                       "flow_action must be navigate or data_exchange.")
            if params.get("flow_action", "navigate") == "navigate":
                self._need(bool((params.get("flow_action_payload") or {}).get("screen")), 131008,
                           "flow_action_payload.screen is required to navigate.")
        else:
            self._need(itype in ("button", "list", "product", "product_list", "catalog_message"), 131009,
                       f"Unsupported interactive type {itype!r}.")

    def _v_template(self, obj) -> None:
        self._need(isinstance(obj, dict) and obj.get("name"), 131008, "template['name'] is required.")
        lang = obj.get("language")
        self._need(isinstance(lang, dict) and lang.get("code"), 131008, "template['language']['code'] is required.")
