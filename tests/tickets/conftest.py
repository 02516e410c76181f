import pytest

from tests.tickets.factories import make_ticket


@pytest.fixture
def ticket(requester, agent, manager):
    """A new routine incident filed by `requester` (agent and manager exist, so round-robin has people)."""
    return make_ticket(requester)


@pytest.fixture
def team_mate(make_user):
    return make_user("teammate", role="requester", team="E-commerce ops")
