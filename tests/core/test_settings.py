"""Missing production secrets fail at import time, not at the first request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD_OK = {
    "REACH_ENV": "production",
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "reach.example.com",
    "DATABASE_URL": "postgres://u:p@db.invalid:5432/reach",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "REACH_ENCRYPTION_KEY": "k" * 43 + "=",
    "META_APP_SECRET": "app-secret",
    "META_VERIFY_TOKEN": "verify-token",
}


def _import_settings(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PROD_OK and not k.startswith(("REACH_", "DJANGO_"))}
    clean.update(env, REACH_VAR_DIR="/tmp/reach-settings-test")
    code = "import reach.settings as s; print('OK', s.DEBUG, getattr(s, 'SECURE_SSL_REDIRECT', None))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=60)


def test_complete_production_settings_import():
    result = _import_settings(PROD_OK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK False True"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                                     "REACH_ENCRYPTION_KEY", "META_APP_SECRET", "META_VERIFY_TOKEN"])
def test_each_missing_production_secret_fails_at_import(missing):
    env = {k: v for k, v in PROD_OK.items() if k != missing}
    result = _import_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_development_secret_key_is_refused_in_production():
    result = _import_settings({**PROD_OK, "SECRET_KEY": "reach-development-only-secret-key-do-not-use-in-production"})
    assert result.returncode != 0 and "development default" in result.stderr


def test_debug_is_refused_in_production():
    result = _import_settings({**PROD_OK, "DEBUG": "true"})
    assert result.returncode != 0 and "DEBUG" in result.stderr


def test_development_defaults_import_without_any_env():
    result = _import_settings({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK False")


def test_env_example_lists_every_setting_read_from_the_environment():
    settings_text = (ROOT / "reach" / "settings.py").read_text()
    example = (ROOT / ".env.example").read_text()
    import re

    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    names |= set(re.findall(r'_required_in_production\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    missing = names - documented
    assert not missing, f"add these settings, with a comment, to .env.example: {sorted(missing)}"
