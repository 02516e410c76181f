import pytest

from tests.crm_tags import factories


def _english(user):
    user.language = "en"
    user.save(update_fields=["language"])
    return user


# The pages are asserted in English; people default to Chinese.
@pytest.fixture
def requester(requester):
    return _english(requester)


@pytest.fixture
def agent(agent):
    return _english(agent)


@pytest.fixture
def manager(manager):
    return _english(manager)


PLANTED_EMAIL = "zhang.wei.planted@example.com"
PLANTED_PHONE = "13912345678"
PLANTED_NAME = "张伟植入"


@pytest.fixture
def planted(db):
    """A customer whose e-mail, phone and name are known strings no masked output may contain."""
    return factories.customer(
        external_id="PLANTED1", name=PLANTED_NAME, email=PLANTED_EMAIL, phone=PLANTED_PHONE, city="Shanghai"
    )
