"""Daphne's requests no longer parse form bodies (Django does): the body still reaches the application whole."""

from __future__ import annotations

from daphne import http_protocol
from twisted.internet.testing import StringTransport

from apps.core.runtime.daphne_requests import BodyToDjangoWebRequest, leave_request_bodies_to_django

FORM = b"a=1&b=2"
MULTIPART = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n"
             b"Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n")


class _Queue:
    def __init__(self):
        self.messages = []

    def put_nowait(self, message):
        self.messages.append(message)


class _Server:
    """What Daphne's WebRequest asks of its server, recording what the application would receive."""

    proxy_forwarded_address_header = None
    request_buffer_size = 8192
    root_path = ""
    server_name = "test"

    def __init__(self):
        self.requests, self.queue = [], _Queue()

    def protocol_connected(self, protocol):
        self.requests.append(protocol)

    def create_application(self, protocol, scope):
        self.scope = scope
        return self.queue


def _post(content_type: bytes, body: bytes) -> tuple[_Server, object]:
    server = _Server()
    protocol = http_protocol.HTTPFactory(server).buildProtocol(("127.0.0.1", 0))
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(b"POST /api/v1/media HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type
                          + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    [request] = server.requests
    return server, request


def test_installed_by_the_asgi_module():
    import reach.asgi  # noqa: F401  (what `daphne reach.asgi:application` and `manage.py serve` load)

    assert http_protocol.WebRequest is BodyToDjangoWebRequest
    assert leave_request_bodies_to_django() is True  # idempotent


def test_form_posts_are_not_parsed_by_twisted_and_reach_the_application_whole():
    leave_request_bodies_to_django()
    for content_type, body in ((b"application/x-www-form-urlencoded", FORM),
                               (b"multipart/form-data; boundary=XyZ", MULTIPART)):
        server, request = _post(content_type, body)
        assert isinstance(request, BodyToDjangoWebRequest)
        assert request.args == {}
        assert server.scope["method"] == "POST" and server.scope["path"] == "/api/v1/media"
        sent = b"".join(m.get("body", b"") for m in server.queue.messages if m["type"] == "http.request")
        assert sent == body


def test_twisted_default_would_have_parsed_them():
    """The switch is what makes the difference: Daphne's own request class parses the same form."""
    server = _Server()
    protocol = http_protocol.HTTPFactory(server).buildProtocol(("127.0.0.1", 0))
    protocol.requestFactory = http_protocol.WebRequest.__mro__[1]  # Daphne's WebRequest
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                          b"\r\nContent-Length: 7\r\n\r\n" + FORM)
    assert server.requests[0].args == {b"a": [b"1"], b"b": [b"2"]}
