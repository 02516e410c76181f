"""Property: on random identifier graphs, resolution leaves exactly one profile per connected component
(under the merge rules, limits and block list), and an unmerge restores the previous state exactly."""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tags.identity import customers_merge, customers_unmerge, identity_rules, profile_resolve_or_create
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, MergeRule
from tests.crm_tags.test_identity import _state

POOLS = {
    "email": ["a@example.com", "b@example.com", "c@example.com", "test@test.com"],
    "phone": ["+8613811110001", "+8613811110002", "+8613800000000"],
    "member_no": ["M1", "M2", "M3", "null"],
}
identifier = st.sampled_from(sorted(POOLS)).flatmap(
    lambda kind: st.tuples(st.just(kind), st.sampled_from(POOLS[kind]))
)
rows = st.lists(st.lists(identifier, min_size=1, max_size=3, unique=True), min_size=1, max_size=8)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _reset() -> None:
    CustomerMerge.objects.all().delete()
    CustomerIdentifier.objects.all().delete()
    Customer.objects.all().delete()


def _components(graph: list[list[tuple[str, str]]]) -> list[set[int]]:
    """The reference: rows joined by a shared identifier that is not blocked (union-find over rows)."""
    rules = identity_rules()
    parent = list(range(len(graph)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_row: dict[tuple[str, str], int] = {}
    for i, row in enumerate(graph):
        for pair in row:
            if rules.is_blocked(*pair):
                continue
            if pair in first_row:
                parent[find(i)] = find(first_row[pair])
            else:
                first_row[pair] = i
    groups: dict[int, set[int]] = {}
    for i in range(len(graph)):
        groups.setdefault(find(i), set()).add(i)
    return list(groups.values())


def _resolve_all(graph: list[list[tuple[str, str]]]) -> dict[int, int]:
    """Resolve each row as an import would; returns row -> the profile holding its external id now."""
    for i, row in enumerate(graph):
        profile_resolve_or_create(identifiers=row, external_id=f"R{i}", by=None)
    held = dict(CustomerIdentifier.objects.filter(kind="external_id").values_list("value", "customer_id"))
    return {i: held[f"R{i}"] for i in range(len(graph))}


@pytest.mark.django_db
@SETTINGS
@given(graph=rows)
def test_every_connected_component_is_exactly_one_profile(graph):
    # given no limits per profile, only the block list
    _reset()
    MergeRule.objects.update(max_per_profile=None)
    # when every row is resolved
    profile_of = _resolve_all(graph)
    # then the rows of one component share one profile, and different components different ones
    components = _components(graph)
    profiles = [{profile_of[i] for i in component} for component in components]
    assert all(len(p) == 1 for p in profiles)
    assert len({next(iter(p)) for p in profiles}) == len(components) == Customer.objects.count()
    # and no blocked value is held by anyone
    assert not any(
        identity_rules().is_blocked(k, v) for k, v in CustomerIdentifier.objects.values_list("kind", "value")
    )


@pytest.mark.django_db
@SETTINGS
@given(graph=rows)
def test_limits_hold_and_only_limits_keep_a_component_apart(graph):
    # given at most one member number and two e-mails per profile
    _reset()
    MergeRule.objects.update(max_per_profile=None)
    MergeRule.objects.filter(kind__slug="member_no").update(max_per_profile=1)
    MergeRule.objects.filter(kind__slug="email").update(max_per_profile=2)
    # when every row is resolved
    profile_of = _resolve_all(graph)
    # then no profile holds more than its limits
    held = Counter(CustomerIdentifier.objects.values_list("customer_id", "kind"))
    assert all(n <= {"member_no": 1, "email": 2}.get(kind, n) for (_cid, kind), n in held.items())
    # and a component split over several profiles is split only because a merge would pass a limit
    rules = identity_rules()
    for component in _components(graph):
        ids = sorted({profile_of[i] for i in component})
        for a, b in zip(ids, ids[1:], strict=False):
            together = Counter(
                k
                for cid, k in CustomerIdentifier.objects.filter(customer_id__in=[a, b]).values_list(
                    "customer_id", "kind"
                )
            )
            blocked = rules.over_limit(together.items())
            assert blocked or not _shares_a_row(graph, component, profile_of, a, b), (a, b)


def _shares_a_row(graph, component, profile_of, a, b) -> bool:
    """Some row of the component holds identifiers now held by both profiles."""
    owner = dict(
        ((k, v), cid) for cid, k, v in CustomerIdentifier.objects.values_list("customer_id", "kind", "value")
    )
    return any({owner.get(pair) for pair in graph[i]} >= {a, b} for i in component)


@pytest.mark.django_db
@SETTINGS
@given(graph=rows, data=st.data())
def test_unmerge_restores_the_previous_state_exactly(graph, data):
    # given a resolved base with at least two profiles
    _reset()
    MergeRule.objects.update(max_per_profile=None)
    _resolve_all(graph)
    ids = sorted(Customer.objects.values_list("pk", flat=True))
    if len(ids) < 2:
        return
    survivor_id, loser_id = data.draw(st.permutations(ids))[:2]
    before = _state()
    # when two profiles are merged and the merge undone
    survivor = Customer.objects.get(pk=survivor_id)
    merge = customers_merge(
        survivor=survivor, loser=Customer.objects.get(pk=loser_id), by=None, rebuild=False
    )
    customers_unmerge(survivor=survivor, merge_id=merge.pk, by=None, rebuild=False)
    # then everything is as before
    assert _state() == before
