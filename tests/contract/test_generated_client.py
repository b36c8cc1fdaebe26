"""The schema generates a Python client without warnings (openapi-python-client), and that client sends
a sandbox message to a live server: the contract is usable, not only valid."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conversations.send_support import contact

pytestmark = pytest.mark.django_db(transaction=True)


def _generator() -> str:
    return str(Path(sys.executable).with_name("openapi-python-client"))


def test_generated_python_client_sends_a_sandbox_message(live_server, workspace, make_key, tmp_path, monkeypatch):
    schema = requests.get(f"{live_server.url}/api/v1/schema?format=json", timeout=30).json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(schema))
    out = tmp_path / "client"
    done = subprocess.run([_generator(), "generate", "--path", str(path), "--output-path", str(out), "--meta",
                           "none"], capture_output=True, text=True, timeout=180,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output and "Unable to" not in output and "removal" not in output, output

    monkeypatch.syspath_prepend(str(tmp_path))
    package = out.name
    client_module = importlib.import_module(f"{package}.client")
    send = importlib.import_module(f"{package}.api.messages.messages_send")
    get = importlib.import_module(f"{package}.api.messages.messages_get")
    models = importlib.import_module(f"{package}.models")

    contact(workspace.sandbox)  # wrote within the last 24 hours: a free-form text may go
    client = client_module.AuthenticatedClient(base_url=live_server.url, token=make_key(workspace, sandbox=True))
    body = models.TextMessageSendRequest.from_dict(
        {"to": "+15557654321", "type": "text", "text": {"body": "Hello from a client"}})
    accepted = send.sync_detailed(client=client, body=body)
    assert accepted.status_code == 202, accepted.content
    assert accepted.parsed.status.value == "queued" and accepted.parsed.id.startswith("msg_")
    message = get.sync(accepted.parsed.id, client=client)
    assert message.id == accepted.parsed.id and message.to == "+15557654321" and message.type_ == "text"
