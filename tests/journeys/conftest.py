import pytest


@pytest.fixture(autouse=True)
def _journey_settings(settings):
    """No quiet hours unless a test sets them (the suite runs at any hour), a generous cap, fast retries,
    and e-mail kept in memory."""
    settings.JOURNEYS_QUIET_HOURS = (0, 0)
    settings.JOURNEYS_FREQUENCY_CAP = {}
    settings.JOURNEYS_FREQUENCY_CAP_DEFAULT = 100
    settings.JOURNEYS_WEBHOOK_BACKOFF_SECONDS = 30
    settings.JOURNEYS_WEBHOOK_MAX_ATTEMPTS = 3
    settings.JOURNEYS_WEBHOOK_TIMEOUT = 5
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CONSENT_DEFAULT_UNKNOWN = "exclude"


@pytest.fixture
def marketer(make_user):
    """Marketing staff (a requester) in E-commerce ops: builds their team's journeys."""
    return make_user("marketer", role="requester", team="E-commerce ops")
