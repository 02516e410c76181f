import pytest

from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    Event,
    RankedCount,
    TagMembership,
    TagMembershipChange,
)


@pytest.fixture
def crm_reset(db):
    """Empties customers, events, totals, ranks and memberships (one database reused by many hypothesis examples)."""

    def _reset() -> None:
        TagMembershipChange.objects.all().delete()
        TagMembership.objects.all().delete()
        CustomerEventTotal.objects.all().delete()
        Event.objects.all().delete()
        Customer.objects.all().delete()
        RankedCount.objects.all().delete()

    return _reset


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


@pytest.fixture
def second_range_fails(monkeypatch) -> list[int]:
    """The second customer-id range a fanned-out build runs raises (its rule's compile, as a lost worker
    connection would); the list counts the ranges that started."""
    from crm_tags import fanout

    compile_rule = fanout.compile_rule
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("range worker lost its connection")
        return compile_rule(*args, **kwargs)

    monkeypatch.setattr(fanout, "compile_rule", second_fails)
    return calls
