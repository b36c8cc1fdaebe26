"""SMS fixtures: a fake Twilio over a real socket, and the settings that point the live gateway at it."""

from __future__ import annotations

import pytest

from apps.providers import sms as sms_gateways
from apps.providers.sms.fake_twilio import FakeTwilio

ACCOUNT_SID, AUTH_TOKEN = "ACtest0001", "twilio-test-token"


@pytest.fixture
def faketwilio():
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_settings(settings, faketwilio):
    settings.SMS_GATEWAY = "twilio"
    settings.TWILIO_API_URL = faketwilio.base_url
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.SMS_DEFAULT_SENDER = "+15005550006"
    sms_gateways.reset_for_tests()
    yield settings
    sms_gateways.reset_for_tests()
