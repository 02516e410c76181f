import pytest

from campaigns.models import Campaign
from tests.campaigns.factories import campaign_make


@pytest.fixture
def campaign(requester) -> Campaign:
    """A campaign of the requester's team (E-commerce ops), in planning."""
    return campaign_make(owner=requester, code="c618", name="618 promo")
