"""GET /l/<code>: a tracked link's visit -> 302 to its URL, the click recorded. An unknown code is a plain
404 page (no stack trace, nothing recorded). Not cached: each visit is a click."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache

from apps.links.services import link_click_record


@never_cache
def link_visit(request: HttpRequest, code: str) -> HttpResponse:
    if request.method != "GET":
        return HttpResponse("Method not allowed", status=405, content_type="text/plain", headers={"Allow": "GET"})
    url = link_click_record(code=code, user_agent=request.headers.get("User-Agent", "")[:500])
    if url is None:
        return HttpResponse("Not found", status=404, content_type="text/plain")
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"
    return response
