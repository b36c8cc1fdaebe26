import pytest

from apps.core.models import API_SCOPES
from apps.core.tenancy import Tenant
from tests.campaigns.factories import make_number, make_template


@pytest.fixture
def number(workspace):
    return make_number(workspace)


@pytest.fixture
def template(number):
    return make_template(number)


@pytest.fixture
def tenant(workspace):
    return Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))


@pytest.fixture
def small_batches(settings):
    """Batches of 3 with an in-flight window of 3, so tests can stop between batches."""
    settings.CAMPAIGN_BATCH_SIZE = 3
    settings.CAMPAIGN_MIN_IN_FLIGHT = 3
    settings.CAMPAIGN_IN_FLIGHT_SECONDS = 0
    return settings


@pytest.fixture(params=["sql", "python"])
def hand_out(request, settings):
    """Run a test over both hand-out paths: the set-based statement (PostgreSQL) and recipient by recipient
    (SQLite's, and PostgreSQL's for values only Python renders exactly). Returns the patchable seam's name."""
    from django.db import connection

    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the set-based hand-out is PostgreSQL's")
    settings.CAMPAIGN_HAND_OUT_SQL = request.param == "sql"
    return "_enqueue_query" if request.param == "sql" else "_enqueue_bulk"
