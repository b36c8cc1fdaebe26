"""The test run's settings: reach/settings.py as production reads it, plus test configuration that
changes no behaviour — the run's own Redis logical database (so tests never flush an operator's data)
and a cheap password hasher (the default costs ~0.5 s per user; tests create many).

Subprocesses a test starts inherit DJANGO_SETTINGS_MODULE and the rewritten REDIS_URL from this process."""

from __future__ import annotations

import os
from pathlib import Path

import environ

_ENV_FILE = Path(__file__).resolve().parent.parent / ".env"
if _ENV_FILE.exists():  # read as reach/settings.py reads it, so a REDIS_URL from .env is rewritten too
    environ.Env.read_env(str(_ENV_FILE), overwrite=False)


def _redis_url_for_tests(url: str) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{int(os.environ.get('REDIS_TEST_DB', '15'))}"


if os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = _redis_url_for_tests(os.environ["REDIS_URL"])

from reach.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Fixture money: a new live wallet opens with this balance, so tests that are not about the wallet send
# templates as before (tests/billing sets its own balances).
BILLING_OPENING_BALANCE = "100000.0000"
