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
