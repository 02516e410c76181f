import pytest

from tests.crm_tags import factories

# people whose pages are asserted in English (they default to Chinese), as in the crm_tags tests
from tests.crm_tags.conftest import agent, manager, requester  # noqa: F401

PLANTED_EMAIL = "zhang.wei.planted@example.com"
PLANTED_PHONE = "13912345678"
PLANTED_NAME = "张伟植入"


@pytest.fixture
def planted(db):
    """A customer whose e-mail, phone and name are known strings no masked output may contain."""
    return factories.customer(
        external_id="PLANTED1", name=PLANTED_NAME, email=PLANTED_EMAIL, phone=PLANTED_PHONE, city="Shanghai"
    )
