"""Batch resolution of an existing base: the identifier graph's connected components, found set-based.

In Postgres: the values the customer rows carry (the e-mail and phone columns, the identifier attributes,
external ids), normalised (a phone that is not a plain mainland mobile goes through `normalise_phone` in
Python, the rare case) and without blocked values, go to a session's temporary table. Two profiles are
one person when a row's value is stored as another profile's identifier, or several rows carry it (the
stored identifiers are unique: they never share a value among themselves); only those customer-id pairs
stream to Python, where scipy's `connected_components` finds the groups.
Each component merges into its oldest profile: the components whose profiles together stay within every
kind's limit (nearly all; checked in SQL) with the set-based bulk merge, a batch of groups per
transaction; the others pair by pair, each merged profile that would pass a limit refused and counted.
The values are then stored as identifiers of their profile within the limits per kind, with one
statement.
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accounts.models import User
from config.pooling import require_session_connection
from crm_tags.identity.bulk import customers_merge_bulk
from crm_tags.identity.merge import MergeRefused, customers_merge, tags_rebuild_after_merge
from crm_tags.identity.normalise import IdentifierInvalid, normalise_phone
from crm_tags.identity.rules import IdentityRules, identity_rules
from crm_tags.models import Customer

log = logging.getLogger(__name__)

SAMPLE = 5
BATCH_GROUPS = 100_000

TRIPLES, PHONES, BLOCKED, GROUPS, OWNERS = (
    "crm_identity_triples",
    "crm_identity_phones",
    "crm_identity_blocked",
    "crm_identity_groups",
    "crm_identity_owners",
)
_SEPARATORS_SQL = "translate(phone, ' ()-.' || chr(9), '')"
_MOBILE_SQL = r"'^(\+86|0086|86)?1[3-9][0-9]{9}$'"


def _unblocked(alias: str) -> str:
    """SQL true when the triple `alias` (kind, value) is no blocked value (for its kind or every kind;
    an openid also by its part after the app id)."""
    return f"""NOT EXISTS (SELECT 1 FROM {BLOCKED} b WHERE b.value = lower({alias}.value) AND b.kind IN ({alias}.kind, ''))
      AND NOT ({alias}.kind = 'wechat_openid' AND EXISTS (SELECT 1 FROM {BLOCKED} b
        WHERE b.value = lower(substr({alias}.value, strpos({alias}.value, ':') + 1)) AND b.kind IN ({alias}.kind, '')))"""


# the values the customer rows carry (columns and identifier attributes), normalised, of merging kinds, not
# blocked (src: where each came from, for a stable order). The stored identifiers are read where they are:
# each (kind, value) is stored once, so two profiles share a value only through a row's value.
_TRIPLES_SQL = f"""
CREATE TEMP TABLE {TRIPLES} AS
SELECT kind, value, customer_id, src FROM (
    SELECT 'email' AS kind, lower(btrim(email)) AS value, id AS customer_id, 1 AS src
      FROM crm_tags_customer WHERE btrim(email) <> ''
    UNION ALL SELECT 'phone', '+86' || right(p, 11), id, 2 FROM (
        SELECT id, {_SEPARATORS_SQL} AS p FROM crm_tags_customer WHERE btrim(phone) <> '') x
      WHERE p ~ {_MOBILE_SQL}
    UNION ALL SELECT 'phone', value, customer_id, 2 FROM {PHONES}
    UNION ALL SELECT 'external_id', external_id, id, 3 FROM crm_tags_customer
    UNION ALL SELECT 'wechat_unionid', btrim(attributes->>'wechat_unionid'), id, 4 FROM crm_tags_customer
      WHERE attributes ? 'wechat_unionid' AND btrim(attributes->>'wechat_unionid') <> ''
    UNION ALL SELECT 'member_no', btrim(attributes->>'member_no'), id, 5 FROM crm_tags_customer
      WHERE attributes ? 'member_no' AND btrim(attributes->>'member_no') <> ''
    UNION ALL SELECT 'wechat_openid',
        btrim(attributes->>'wechat_app_id') || ':' || btrim(attributes->>'wechat_openid'), id, 6
      FROM crm_tags_customer WHERE attributes ? 'wechat_openid' AND attributes ? 'wechat_app_id'
) t
WHERE kind = ANY(%(merging)s) AND value <> '' AND {_unblocked("t")}
"""
# the stored identifiers of merging kinds that are not blocked (those the graph counts)
_STORED_SQL = f"""
SELECT s.kind::text AS kind, s.value::text AS value, s.customer_id FROM crm_tags_customeridentifier s
WHERE s.kind = ANY(%(merging)s) AND {_unblocked("s")}
"""
# the profiles that share a value: a row's value another profile stores, and a value several rows carry
# (each with its lowest holder: enough to connect them all)
_EDGES_SQL = f"""
SELECT i.customer_id, t.customer_id FROM {TRIPLES} t
JOIN crm_tags_customeridentifier i ON i.kind = t.kind AND i.value = t.value
WHERE i.customer_id <> t.customer_id
UNION ALL
SELECT s.first, t.customer_id FROM {TRIPLES} t JOIN (
    SELECT kind, value, min(customer_id) AS first FROM {TRIPLES} WHERE kind <> 'external_id'
    GROUP BY kind, value HAVING min(customer_id) <> max(customer_id)
) s USING (kind, value)
WHERE t.customer_id <> s.first
"""


@dataclass
class BatchReport:
    """What a run found (and did): counts and a sample of groups by external id (no personal values)."""

    customers: int = 0
    identifiers: int = 0
    groups: int = 0
    profiles_to_merge: int = 0
    merged: int = 0
    refused: int = 0
    identifiers_added: int = 0
    sample: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    # seconds per phase: read (stream and normalise), components, merge, store
    phases: dict[str, float] = field(default_factory=dict)

    def lap(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases[phase] = round(now - since, 2)
        return now


def _copy_out(cursor: Any, query: str, params: dict[str, Any] | None = None) -> np.ndarray:
    """A query's integer rows as a numpy array (COPY … TO STDOUT in CSV: no per-row Python objects)."""
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.tell():
        return np.zeros((0, 2), dtype=np.int64)
    buffer.seek(0)
    return pd.read_csv(buffer, header=None, dtype=np.int64).to_numpy()


def triples_stage(cursor: Any, rules: IdentityRules) -> int:
    """The session's table of the customer rows' normalised, unblocked (kind, value, customer) triples of
    merging kinds (see the module's docstring); returns how many values the graph holds, the stored
    identifiers it counts included."""
    cursor.execute(f"DROP TABLE IF EXISTS {TRIPLES}, {PHONES}, {BLOCKED}, {GROUPS}, {OWNERS}")
    cursor.execute(f"CREATE TEMP TABLE {BLOCKED} (kind text, value text)")
    cursor.execute(f"CREATE TEMP TABLE {PHONES} (customer_id bigint, value text)")
    with cursor.copy(f"COPY {BLOCKED} (kind, value) FROM STDIN") as copy:
        for kind, value in sorted(rules.blocked):
            copy.write_row((kind, value))
    # the phones that are not a plain mainland mobile, normalised one by one (few)
    cursor.execute(
        f"SELECT id, phone FROM crm_tags_customer WHERE btrim(phone) <> '' AND {_SEPARATORS_SQL} !~ {_MOBILE_SQL}"
    )
    others = [(pk, value) for pk, raw in cursor.fetchall() if (value := _phone_or_none(raw)) is not None]
    with cursor.copy(f"COPY {PHONES} (customer_id, value) FROM STDIN") as copy:
        for row in others:
            copy.write_row(row)
    merging = [k for k, rule in rules.kinds.items() if rule.merges]
    cursor.execute(_TRIPLES_SQL, {"merging": merging})
    count = cursor.rowcount
    cursor.execute(f"ANALYZE {TRIPLES}")
    cursor.execute(f"SELECT count(*) FROM ({_STORED_SQL}) s", {"merging": merging})
    return count + cursor.fetchone()[0]


def components_find(cursor: Any, order: np.ndarray) -> np.ndarray:
    """For customers in `order` (oldest first): each one's component label, from the shared values'
    edges (customer ids only) with scipy."""
    n = len(order)
    edges = _copy_out(cursor, _EDGES_SQL)
    position = pd.Series(np.arange(n), index=order)
    ends = position.reindex(edges.ravel()).to_numpy().reshape(-1, 2)
    ends = ends[~np.isnan(ends).any(axis=1)].astype(np.int64)
    graph = coo_matrix((np.ones(len(ends), dtype=np.int8), (ends[:, 0], ends[:, 1])), shape=(n, n))
    _count, labels = connected_components(graph, directed=False)
    return labels


@dataclass
class Groups:
    """The components of more than one profile: per member (oldest first within a group), its id, its
    group's label and its group's survivor (the oldest)."""

    ids: np.ndarray
    labels: np.ndarray
    survivors: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, ids: np.ndarray, only: set[int] | None) -> "Groups":
        counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
        positions = np.flatnonzero(counts[labels] > 1) if len(labels) else np.zeros(0, dtype=np.int64)
        # a stable sort by label keeps each group's members oldest first
        positions = positions[np.argsort(labels[positions], kind="stable")]
        member_ids, member_labels = ids[positions], labels[positions]
        if only is not None:
            wanted = np.unique(member_labels[np.isin(member_ids, list(only))])
            keep = np.isin(member_labels, wanted)
            member_ids, member_labels = member_ids[keep], member_labels[keep]
        first = (
            np.r_[True, member_labels[1:] != member_labels[:-1]] if len(member_labels) else np.zeros(0, bool)
        )
        survivors = member_ids[first][np.cumsum(first) - 1] if len(member_ids) else member_ids
        return cls(member_ids, member_labels, survivors)

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.ids == self.survivors))

    def lists(self, mask: np.ndarray | None = None) -> list[list[int]]:
        """The groups (of the members where `mask`) as lists of ids, oldest first."""
        ids, labels = (self.ids, self.labels) if mask is None else (self.ids[mask], self.labels[mask])
        if not len(ids):
            return []
        bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        return [chunk.tolist() for chunk in np.split(ids, bounds[1:])]


# the groups whose profiles, were they one, would hold more values of a kind than its limit: the graph's
# values, the stored identifiers of kinds that do not merge (not in the graph), and each profile's own
# external id (stored or not) when that kind does not merge
_OVER_LIMIT_SQL = f"""
SELECT DISTINCT c.label FROM (
    SELECT g.label, v.kind, count(DISTINCT v.value) AS n FROM (
        SELECT kind, value, customer_id FROM {TRIPLES} WHERE kind = ANY(%(limited)s)
        UNION ALL SELECT kind, value, customer_id FROM ({_STORED_SQL}) s
            WHERE kind = ANY(%(limited)s) AND customer_id IN (SELECT customer_id FROM {GROUPS})
        UNION ALL SELECT kind, value, customer_id FROM crm_tags_customeridentifier WHERE kind = ANY(%(silent)s)
        UNION ALL SELECT 'external_id', external_id, id FROM crm_tags_customer WHERE 'external_id' = ANY(%(silent)s)
            AND id IN (SELECT customer_id FROM {GROUPS})
    ) v JOIN {GROUPS} g USING (customer_id) GROUP BY g.label, v.kind
) c JOIN unnest(%(limited)s::text[], %(limits)s::int[]) AS l(kind, max) USING (kind)
WHERE c.n > l.max
"""


def _groups_stage(cursor: Any, groups: Groups) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {GROUPS}")
    cursor.execute(f"CREATE TEMP TABLE {GROUPS} (customer_id bigint PRIMARY KEY, label bigint)")
    with cursor.copy(f"COPY {GROUPS} (customer_id, label) FROM STDIN") as copy:
        for row in zip(groups.ids.tolist(), groups.labels.tolist(), strict=True):
            copy.write_row(row)
    cursor.execute(f"ANALYZE {GROUPS}")


def _over_limit_labels(cursor: Any, rules: IdentityRules) -> np.ndarray:
    limits = {k: r.max_per_profile for k, r in rules.kinds.items() if r.max_per_profile is not None}
    if not limits:
        return np.zeros(0, dtype=np.int64)
    cursor.execute(
        _OVER_LIMIT_SQL,
        {
            "limited": list(limits),
            "limits": list(limits.values()),
            "silent": [k for k in limits if not rules.kinds[k].merges],
            "merging": [k for k, rule in rules.kinds.items() if rule.merges],
        },
    )
    return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)


def resolve_identities(
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_GROUPS,
    by: User | None = None,
    progress: Callable[[int, int], None] | None = None,
    only: set[int] | None = None,
) -> BatchReport:
    """Find (and unless `dry_run`, merge) the profiles that are one person; see the module's docstring.
    `only`: merge just the groups that hold one of these customers."""
    require_session_connection("Identity resolution")  # its temporary tables span many transactions
    started = time.monotonic()
    rules = identity_rules()
    report = BatchReport()
    with connection.cursor() as cursor:
        try:
            return _resolve(cursor, rules, report, started, dry_run, batch_size, by, progress, only)
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {TRIPLES}, {PHONES}, {BLOCKED}, {GROUPS}, {OWNERS}")
            cursor.execute("RESET work_mem; RESET jit")


def _resolve(
    cursor: Any,
    rules: IdentityRules,
    report: BatchReport,
    started: float,
    dry_run: bool,
    batch_size: int,
    by: User | None,
    progress: Callable[[int, int], None] | None,
    only: set[int] | None,
) -> BatchReport:
    cursor.execute("SELECT set_config('work_mem', '256MB', false), set_config('jit', 'off', false)")
    report.identifiers = triples_stage(cursor, rules)
    # every profile, oldest first (the order a group's survivor is chosen by)
    order = _copy_out(cursor, "SELECT id, 0 FROM crm_tags_customer ORDER BY created_at, id")[:, 0]
    report.customers = len(order)
    lap = report.lap("read", started)
    groups = Groups.of(components_find(cursor, order), order, only)
    report.groups = groups.count
    report.profiles_to_merge = len(groups.ids) - report.groups
    sample = groups.lists(np.isin(groups.labels, np.unique(groups.labels)[:SAMPLE]))
    external = dict(
        Customer.objects.filter(pk__in=[pk for g in sample for pk in g]).values_list("pk", "external_id")
    )
    report.sample = [[external[pk] for pk in group] for group in sample]
    lap = report.lap("components", lap)
    if dry_run:
        report.seconds = time.monotonic() - started
        return report
    _groups_stage(cursor, groups)
    plain = ~np.isin(groups.labels, _over_limit_labels(cursor, rules))
    losers = plain & (groups.ids != groups.survivors)
    pairs = np.column_stack([groups.survivors[losers], groups.ids[losers]])
    # a batch ends at a group's end: the first pair of every batch_size-th group starts a new one
    group_starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]) if len(pairs) else []
    cuts = [*group_starts[::batch_size].tolist()[1:], len(pairs)] if len(pairs) else []
    owners: dict[int, int] = {}
    done, begin = 0, 0
    for end in cuts:
        batch = [tuple(p) for p in pairs[begin:end].tolist()]
        merged = customers_merge_bulk(pairs=batch, by=by, source="batch")
        owners.update(merged)
        report.merged += len(merged)
        done += len({s for s, _l in batch})
        begin = end
        if progress is not None:
            progress(done, report.groups)
    for group in groups.lists(~plain):
        _group_merge_one_by_one(cursor, group, rules, by, report, owners)
        done += 1
        if progress is not None and (done % batch_size == 0 or done == report.groups):
            progress(done, report.groups)
    lap = report.lap("merge", lap)
    report.identifiers_added = identifiers_store(cursor, owners, rules)
    report.lap("store", lap)
    if report.merged:
        tags_rebuild_after_merge()
    report.seconds = time.monotonic() - started
    log.info(
        "resolved identities: %s merged, %s refused in %.1fs %s",
        report.merged,
        report.refused,
        report.seconds,
        report.phases,
    )
    return report


@transaction.atomic
def _group_merge_one_by_one(
    cursor: Any, group: list[int], rules: IdentityRules, by: User | None, report: BatchReport, owners: dict
) -> None:
    """A group that would pass a limit as one profile: its profiles merge into the oldest one by one, each
    that would take a kind past its limit refused (counting the values the profiles will hold, not only
    those stored so far)."""
    cursor.execute(
        f"SELECT customer_id, kind, value FROM {TRIPLES} WHERE customer_id = ANY(%(group)s) UNION "
        f"SELECT customer_id, kind, value FROM ({_STORED_SQL}) s WHERE customer_id = ANY(%(group)s)",
        {"group": group, "merging": [k for k, rule in rules.kinds.items() if rule.merges]},
    )
    values: dict[int, set[tuple[str, str]]] = {}
    for customer_id, kind, value in cursor.fetchall():
        values.setdefault(customer_id, set()).add((kind, value))
    survivor = Customer.objects.get(pk=group[0])
    held = set(values.get(group[0], set()))
    for loser_id in group[1:]:
        theirs = values.get(loser_id, set())
        if rules.over_limit(Counter(kind for kind, _value in held | theirs).items()):
            report.refused += 1
            continue
        try:
            customers_merge(
                survivor=survivor,
                loser=Customer.objects.get(pk=loser_id),
                by=by,
                source="batch",
                rules=rules,
                rebuild=False,
            )
        except MergeRefused:
            report.refused += 1
        else:
            held |= theirs
            owners[loser_id] = survivor.pk
            report.merged += 1


# each value of the base not stored yet becomes an identifier of its profile: a merged profile's values
# its survivor's; a value two profiles still hold (their merge refused) the older one's (ids rise with
# age); a profile's own external id not at all (it resolves through the customer row); within each kind's
# limit, counting what the profile holds already
_STORE_SQL = f"""
WITH owned AS (
    SELECT t.kind, t.value, t.src, t.customer_id, COALESCE(o.owner, t.customer_id) AS owner
    FROM {TRIPLES} t LEFT JOIN {OWNERS} o ON o.customer_id = t.customer_id
), fresh AS (
    SELECT DISTINCT ON (w.kind, w.value) w.kind, w.value, w.src, w.owner FROM owned w
    WHERE NOT (w.kind = 'external_id' AND w.customer_id = w.owner)
      AND NOT EXISTS (SELECT 1 FROM crm_tags_customeridentifier i WHERE i.kind = w.kind AND i.value = w.value)
    ORDER BY w.kind, w.value, w.owner
), held AS (
    SELECT customer_id, kind, count(*) AS n FROM crm_tags_customeridentifier
    WHERE customer_id IN (SELECT owner FROM fresh) AND kind = ANY(%(limited)s) GROUP BY 1, 2
), numbered AS (
    SELECT f.kind, f.value, f.owner,
           COALESCE(h.n, 0) + row_number() OVER (PARTITION BY f.owner, f.kind ORDER BY f.src, f.value) AS n
    FROM fresh f LEFT JOIN held h ON h.customer_id = f.owner AND h.kind = f.kind
)
INSERT INTO crm_tags_customeridentifier (kind, value, customer_id, created_at)
SELECT n.kind, n.value, n.owner, now() FROM numbered n
LEFT JOIN unnest(%(limited)s::text[], %(limits)s::int[]) AS l(kind, max) ON l.kind = n.kind
WHERE (l.max IS NULL OR n.n <= l.max) AND EXISTS (SELECT 1 FROM crm_tags_customer c WHERE c.id = n.owner)
ORDER BY n.kind, n.value
ON CONFLICT DO NOTHING
"""


@transaction.atomic
def identifiers_store(cursor: Any, owners: dict[int, int], rules: IdentityRules) -> int:
    """Store the staged values as identifiers of their profiles (`owners`: merged id -> survivor id), with
    one statement; returns how many were added."""
    cursor.execute(f"DROP TABLE IF EXISTS {OWNERS}")
    cursor.execute(f"CREATE TEMP TABLE {OWNERS} (customer_id bigint PRIMARY KEY, owner bigint)")
    with cursor.copy(f"COPY {OWNERS} (customer_id, owner) FROM STDIN") as copy:
        for row in owners.items():
            copy.write_row(row)
    cursor.execute(f"ANALYZE {OWNERS}")
    limited = {k: r.max_per_profile for k, r in rules.kinds.items() if r.max_per_profile is not None}
    cursor.execute(_STORE_SQL, {"limited": list(limited), "limits": list(limited.values())})
    return cursor.rowcount


def _phone_or_none(value: str) -> str | None:
    try:
        return normalise_phone(value)
    except IdentifierInvalid:
        return None
