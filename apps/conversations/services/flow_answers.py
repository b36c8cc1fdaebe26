"""A WhatsApp Flow's answers on the receive road: parsed from the `nfm_reply` and tied to the flow we sent."""

from __future__ import annotations

from apps.conversations.models import Message
from apps.core.models import Workspace


def flow_response_parse(*, message_type: str, content: dict) -> dict | None:
    """A WhatsApp Flow's answers (interactive `nfm_reply`, META.md §3.4) as structured data: the flow token
    that ties it to the flow message we sent, the reply's name and the answered fields (response_json
    decoded; `flow_token` taken out of the fields). None for anything else; a malformed response_json keeps
    its raw text under `raw`."""
    import json

    if message_type != "interactive" or (content or {}).get("type") != "nfm_reply":
        return None
    reply = content.get("nfm_reply") if isinstance(content.get("nfm_reply"), dict) else {}
    raw = reply.get("response_json")
    try:
        fields = json.loads(raw) if isinstance(raw, str) else (raw if isinstance(raw, dict) else {})
    except ValueError:
        return {"flow_token": None, "name": str(reply.get("name") or ""), "fields": {}, "raw": str(raw)[:10000]}
    if not isinstance(fields, dict):
        fields = {"value": fields}
    fields = dict(fields)
    token = fields.pop("flow_token", None)
    return {"flow_token": str(token) if token is not None else None, "name": str(reply.get("name") or ""),
            "fields": fields}


def flow_of_response(*, workspace: Workspace, context_wamid: str | None, flow_token: str | None) -> str | None:
    """The flow (id, else name) of the flow message these answers reply to: by the quoted wamid, else by
    the flow token we sent."""
    outbound = Message.objects.filter(workspace=workspace, direction=Message.Direction.OUTBOUND, type="interactive")
    origin = None
    if context_wamid:
        origin = outbound.filter(provider_message_id=context_wamid).values_list("content", flat=True).first()
    if origin is None and flow_token:
        origin = outbound.filter(content__flow_token=flow_token).values_list("content", flat=True).first()
    if not isinstance(origin, dict):
        return None
    return str(origin.get("flow_id") or origin.get("flow_name") or "") or None
