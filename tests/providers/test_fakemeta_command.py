"""`manage.py fakemeta` as a real process: flags reach the engine, sends and signed webhooks work."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from apps.providers.meta_cloud.signatures import verify_signature

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fakemeta_command_serves_and_signs(webhook_sink):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "fakemeta", "--port", str(port), "--webhook-url", webhook_sink.url,
         # 0.1 mps with a 20 s bucket = 2 tokens, the next one 10 s later: the third send is refused however
         # slowly a loaded machine issues the three (at --mps 2 a token came back within 0.5 s).
         "--app-secret", "cmd-secret", "--mps", "0.1", "--burst-seconds", "20", "--no-pair-limit",
         "--approve-delay", "0.1",
         "--status-delays", "0.01,0.02,0.03", "--verify-token", "vt"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        # Booting Django in a fresh process takes seconds, many more on a loaded CI machine.
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(f"{base}/_admin/stats", timeout=5)
                break
            except requests.RequestException:
                assert proc.poll() is None, "fakemeta exited before it listened"
                assert time.monotonic() < deadline, "fakemeta did not listen within 90 s"
                time.sleep(0.1)
        auth = {"Authorization": "Bearer t"}
        requests.post(f"{base}/_admin/inbound", json={"phone_number_id": "77", "waba_id": "W9",
                                                       "display_phone_number": "15550001234", "from": "+15551112222",
                                                       "text": "hi"}, timeout=5).raise_for_status()
        body = {"messaging_product": "whatsapp", "to": "+15551112222", "type": "text", "text": {"body": "yo"}}
        codes = [requests.post(f"{base}/v23.0/77/messages", json=body, headers=auth, timeout=5) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]  # --mps 0.1 x --burst-seconds 20
        assert codes[2].json()["error"]["code"] == 130429
        tpl = requests.post(f"{base}/v23.0/W9/message_templates", headers=auth, timeout=5, json={
            "name": "hello", "language": "en", "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi"}]})
        assert tpl.json()["status"] == "PENDING"

        def template_decided():
            return any(c["field"] == "message_template_status_update"
                       for p in webhook_sink.payloads() for e in p["entry"] for c in e["changes"])

        deadline = time.monotonic() + 60  # statuses are due within 0.1 s; the slack is for a loaded machine

        def count(status):
            return sum(s["status"] == status for s in webhook_sink.statuses())

        while time.monotonic() < deadline and (count("read") < 2 or not template_decided()):
            time.sleep(0.05)
        # `delivered` is skipped now and then (SIMULATOR_SKIP_DELIVERED_PROBABILITY), as Meta does.
        assert (count("sent"), count("read"), count("delivered") <= 2) == (2, 2, True)
        assert template_decided()
        assert all(verify_signature(body=b, header=h, app_secret="cmd-secret") for b, h in webhook_sink.requests)
        assert {p["entry"][0]["id"] for p in webhook_sink.payloads()} == {"W9"}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "webhook verification handshake: ok" in out
