"""An id of another workspace, of the other half (live vs sandbox) of one's own workspace, or simply
unknown answers 404 on EVERY /api/v1 endpoint that takes an id — and changes nothing.

The endpoint list is discovered from reach.urls at run time, and the foreign objects are built
generically for every tenant model (every model with a `workspace` FK and a prefixed id), so endpoints and
models that other apps add later are covered without touching this file."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re
import uuid

import pytest
from django.apps import apps
from django.db import models, transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.ids import PrefixedIdField, new_id
from apps.core.models import User, Workspace

_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
MUTATING = {"post", "put", "patch", "delete"}


def discover_id_routes(urlconf: str = "reach.urls") -> list[tuple[str, object]]:
    """(route, view) for every api/v1/ path() pattern with at least one path parameter."""
    found = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and isinstance(p.pattern, RoutePattern):
                route = prefix + str(p.pattern)
                if route.startswith("api/v1/") and _PARAM.search(route):
                    found.append((route, p.callback))

    walk(get_resolver(urlconf).url_patterns, "")
    return found


def _methods(view) -> list[str]:
    cls = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if cls is None:
        return ["get"]
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]


def _fill(route: str, value: str) -> str:
    def sub(match):
        return "987654321" if match.group("conv") == "int" else value

    return "/" + _PARAM.sub(sub, route)


# --- a generic builder of one row per tenant model --------------------------------------------------------

_counter = itertools.count(1)


def tenant_models() -> list[type[models.Model]]:
    out = []
    for model in apps.get_models():
        if model._meta.app_label == "core" or model._meta.abstract or model._meta.proxy:
            continue
        names = {f.name for f in model._meta.concrete_fields}
        if "workspace" in names and isinstance(model._meta.pk, PrefixedIdField):
            out.append(model)
    return out


def _value_for(field: models.Field, workspace: Workspace, user: User, cache: dict):
    n = next(_counter)
    if isinstance(field, models.ForeignKey | models.OneToOneField):
        related = field.related_model
        if related is Workspace:
            return workspace
        if related is User:
            return user
        if field.null:
            return None
        return build(related, workspace, user, cache)
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.EmailField):
        return f"x{n}@example.com"
    if isinstance(field, models.URLField):
        return f"https://example.com/{n}"
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, models.CharField | models.TextField | models.SlugField):
        text = f"x{n}{uuid.uuid4().hex}"
        return text[: field.max_length] if field.max_length else text
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(field, models.FloatField):
        return 1.0
    if isinstance(field, models.IntegerField):
        return n
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return dt.date.today()
    if isinstance(field, models.DurationField):
        return dt.timedelta(seconds=1)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.BinaryField):
        return b"x"
    if isinstance(field, models.FileField):
        return f"test/{n}.bin"
    raise LookupError(f"no generic value for {field!r}")


def build(model, workspace: Workspace, user: User, cache: dict):
    """One row of `model` in `workspace`, with parents built in the same workspace; None if the model's
    constraints defeat the generic builder (then only unknown ids probe its endpoints)."""
    key = (model, workspace.pk)
    if key in cache:
        return cache[key]
    cache[key] = None  # breaks cycles
    kwargs = {}
    try:
        for field in model._meta.concrete_fields:
            if field.primary_key or field.auto_created:
                continue
            is_fk = isinstance(field, models.ForeignKey)
            if field.name == "workspace" or (is_fk and not field.null):
                kwargs[field.name] = _value_for(field, workspace, user, cache)
                if kwargs[field.name] is None:
                    return None
                continue
            if field.has_default() or field.null or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                continue
            if field.blank and isinstance(field, models.CharField | models.TextField):
                continue
            kwargs[field.name] = _value_for(field, workspace, user, cache)
        with transaction.atomic():
            obj = model.objects.create(**kwargs)
    except Exception:
        return None
    cache[key] = obj
    return obj


def _norm(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def model_for_route(route: str):
    """The tenant model a route's id names, from the path segment before the first parameter
    (`messages/<pk>` -> Message, `canned-responses/<pk>` -> CannedResponse); None when no model matches."""
    head = _PARAM.split(route, maxsplit=1)[0].rstrip("/").split("/")[-1]
    segment = _norm(head)
    for model in tenant_models():
        names = {_norm(model._meta.model_name), _norm(str(model._meta.verbose_name))}
        plurals = {n + "s" for n in names} | {n[:-1] + "ies" for n in names if n.endswith("y")}
        plurals |= {_norm(str(model._meta.verbose_name_plural))}
        if segment in names | plurals:
            return model
    return None


def _snapshot(objs) -> dict:
    return {(type(o), o.pk): list(type(o).objects.filter(pk=o.pk).values()) for o in objs}


# --- the test ------------------------------------------------------------------------------------------------

ROUTES = discover_id_routes()


@pytest.fixture
def world(workspace, other_workspace, make_key, django_user_model):
    user = django_user_model.objects.create_user(username="probe-owner", password="x-123456789!")
    own_sandbox = Workspace.objects.get(sandbox_of=workspace)
    other_sandbox = Workspace.objects.get(sandbox_of=other_workspace)
    made = {}
    cache: dict = {}
    for ws in (other_workspace, other_sandbox, workspace, own_sandbox):
        made[ws.pk] = [o for o in (build(m, ws, user, cache) for m in tenant_models()) if o is not None]
    unknown = sorted({new_id(m._meta.pk.prefix) for m in tenant_models()}) + ["does-not-exist", "0"]
    foreign_other = made[other_workspace.pk] + made[other_sandbox.pk]
    return {
        # a live key must not reach the sandbox half, a test key not the live half
        "live": (make_key(workspace), foreign_other + made[own_sandbox.pk]),
        "test": (make_key(workspace, sandbox=True), foreign_other + made[workspace.pk]),
        "unknown": unknown,
        "built": {type(o)._meta.label for objs in made.values() for o in objs},
    }


def _call(client: APIClient, method: str, url: str):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, {}, format="json")


def _code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except Exception:
        return None


@pytest.mark.django_db
@pytest.mark.parametrize("route,view", ROUTES, ids=[r for r, _ in ROUTES])
def test_foreign_and_unknown_ids_answer_404(world, route, view):
    # When the route names a model, its foreign rows are the probes that matter (keeps the suite fast);
    # otherwise every tenant model's foreign rows are tried.
    model = model_for_route(route)
    for mode in ("live", "test"):
        secret, foreign = world[mode]
        if model is not None:
            foreign = [o for o in foreign if isinstance(o, model)]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        before = _snapshot(foreign)
        for method in _methods(view):
            baseline = _call(client, method, _fill(route, world["unknown"][0]))
            baseline_key = (baseline.status_code, _code(baseline))
            assert baseline.status_code not in (200, 201, 202, 204, 500), (mode, method, route, baseline.content)
            # A mode-restricted endpoint (e.g. sandbox-only) may refuse every id the same way; any other
            # answer to an unknown id must be the 404 envelope (a validation error for bodies is tolerated).
            allowed_same = {403} | ({400, 422} if method in MUTATING - {"delete"} else set())
            if baseline.status_code != 404:
                assert baseline.status_code in allowed_same, (mode, method, route, baseline.content)
            else:
                assert baseline_key[1] and baseline_key[1].endswith("NOT_FOUND"), baseline.content
            for value in [o.pk for o in foreign] + world["unknown"][1:]:
                response = _call(client, method, _fill(route, value))
                assert (response.status_code, _code(response)) == baseline_key, (
                    f"{mode} key {method.upper()} {_fill(route, value)} -> {response.status_code} "
                    f"{response.content[:300]!r}; an unknown id gives {baseline_key}"
                )
        assert _snapshot(foreign) == before, f"{route} changed a foreign row"


def test_routes_are_matched_to_their_models():
    from apps.contacts.models import Contact
    from apps.wabas.models import PhoneNumber, Waba

    assert model_for_route("api/v1/wabas/<str:pk>/templates") is Waba
    assert model_for_route("api/v1/contacts/<str:pk>") is Contact
    assert model_for_route("api/v1/phone-numbers/<str:pk>") is PhoneNumber
    assert model_for_route("api/v1/unheard-of/<str:pk>") is None


def test_discovery_finds_id_routes_of_a_urlconf():
    routes = {route for route, _ in discover_id_routes("tests.core.urls")}
    assert "api/v1/_test/wabas/<str:pk>" in routes
    assert "api/v1/_test/wabas" not in routes


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls")
def test_the_probe_catches_a_leaky_view(world, monkeypatch):
    """The probe itself can fail: a view that forgets the workspace filter is caught."""
    from apps.wabas.models import Waba
    from tests.core import urls

    monkeypatch.setattr(urls.WabaDetail, "get_scoped", lambda self, model, pk: Waba.objects.get(pk=pk))
    secret, foreign = world["live"]
    waba = next(o for o in foreign if isinstance(o, Waba))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/api/v1/_test/wabas/{waba.pk}").status_code == 200
    monkeypatch.undo()
    assert client.get(f"/api/v1/_test/wabas/{waba.pk}").status_code == 404


@pytest.mark.django_db
def test_the_generic_builder_covers_the_core_tenant_models(world):
    assert {"wabas.Waba", "wabas.PhoneNumber", "contacts.Contact"} <= world["built"]
