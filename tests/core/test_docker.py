"""docker/ cannot run here; these checks keep it consistent with the code by reading it."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_every_role_with_a_healthcheck():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert "healthcheck" in services[name], name
    assert "reach.asgi:application" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "reach", "worker"]
    beat = services["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "reach", "beat"]
    assert beat[beat.index("--scheduler") + 1] == "django_celery_beat.schedulers:DatabaseScheduler"
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["env_file"] == "../.env"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfile_is_slim_non_root_and_collects_static():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "collectstatic --noinput" in text
    assert "\nUSER reach\n" in text
    for path in ("reach", "apps", "templates", "static", "manage.py"):
        assert (ROOT / path).exists()
        assert f"COPY {path}" in text


def test_heartbeat_key_in_compose_matches_the_task():
    from apps.core.tasks import HEARTBEAT_KEY

    assert HEARTBEAT_KEY in (ROOT / "docker" / "compose.yaml").read_text()
