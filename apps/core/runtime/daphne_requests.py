"""Daphne's HTTP requests leave request bodies to Django.

Twisted's `Request` parses the body of every form POST into `request.args` before handing the request
on, and to find out whether a POST is a form it parses its Content-Type header with the `email`
package. Daphne never reads `args`, and Django parses the body itself, so that work is thrown away:
a multipart upload (POST /api/v1/media) was parsed twice, the first time in the reactor thread that
serves every connection, and the header parse alone was about 5% of the send API's CPU (py-spy
during bench/send_api.py). Twisted has a switch for this (`parsePOSTFormSubmission`); Daphne does
not pass it, so Daphne is given a request class that does. Applied from reach/asgi.py, hence under
both `manage.py serve` and the `daphne` command of docker/compose.yaml."""

from __future__ import annotations

import inspect
import logging

from daphne import http_protocol
from twisted.web import http

logger = logging.getLogger("reach.serve")


class BodyToDjangoWebRequest(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs):
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)


def leave_request_bodies_to_django() -> bool:
    """Make Daphne build its HTTP requests with BodyToDjangoWebRequest. Returns False (and changes nothing)
    on a Twisted without the switch."""
    if http_protocol.WebRequest is BodyToDjangoWebRequest:
        return True
    if "parsePOSTFormSubmission" not in inspect.signature(http.Request.__init__).parameters:
        logger.warning("this Twisted parses form bodies Daphne never reads (no parsePOSTFormSubmission)")
        return False
    # HTTPFactory.buildProtocol looks the class up in this module at each connection.
    http_protocol.WebRequest = BodyToDjangoWebRequest
    return True
