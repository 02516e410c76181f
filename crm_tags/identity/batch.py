"""Batch resolution of an existing base: the identifier graph's connected components, found set-based.

(kind, value, customer) triples stream from Postgres (stored identifiers, the e-mail and phone columns,
the identifier attributes, external ids); values are normalised and junk dropped with vectorised pandas
operations; scipy's `connected_components` on the sparse customer-value graph finds who is one person.
Each component merges into its oldest profile: the components whose profiles together stay within every
kind's limit (nearly all) with the set-based bulk merge, a batch of groups per transaction; the others
pair by pair, each merged profile that would pass a limit refused and counted. The values are then stored
as identifiers of their profile within the limits per kind, with one statement.
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import connection, transaction
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accounts.models import User
from crm_tags.identity.bulk import customers_merge_bulk
from crm_tags.identity.merge import MergeRefused, customers_merge, tags_rebuild_after_merge
from crm_tags.identity.normalise import EXTERNAL_ID, normalise_phones
from crm_tags.identity.rules import IdentityRules, identity_rules
from crm_tags.models import Customer

log = logging.getLogger(__name__)

SAMPLE = 5
BATCH_GROUPS = 10_000

# every (kind, value, customer) the base holds; e-mail trimmed and lower-cased here, phones in pandas
_TRIPLES = """
    SELECT kind, value, customer_id FROM crm_tags_customeridentifier
    UNION ALL SELECT 'email', lower(btrim(email)), id FROM crm_tags_customer WHERE btrim(email) <> ''
    UNION ALL SELECT 'phone', phone, id FROM crm_tags_customer WHERE btrim(phone) <> ''
    UNION ALL SELECT 'external_id', external_id, id FROM crm_tags_customer
    UNION ALL SELECT 'wechat_unionid', btrim(attributes->>'wechat_unionid'), id FROM crm_tags_customer
      WHERE attributes ? 'wechat_unionid' AND btrim(attributes->>'wechat_unionid') <> ''
    UNION ALL SELECT 'member_no', btrim(attributes->>'member_no'), id FROM crm_tags_customer
      WHERE attributes ? 'member_no' AND btrim(attributes->>'member_no') <> ''
    UNION ALL SELECT 'wechat_openid', btrim(attributes->>'wechat_app_id') || ':' || btrim(attributes->>'wechat_openid'), id
      FROM crm_tags_customer WHERE attributes ? 'wechat_openid' AND attributes ? 'wechat_app_id'
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


def _copy_out(cursor, query: str, columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """A query's rows as a DataFrame through COPY … TO STDOUT (CSV): no per-row Python objects."""
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return pd.read_csv(
        buffer, names=columns, dtype=dtypes, keep_default_na=False, na_values=[], encoding="utf-8"
    )


def triples_load(rules: IdentityRules) -> pd.DataFrame:
    """The graph's edges: normalised, unblocked values of merging kinds, one row per (kind, value, customer)."""
    with transaction.atomic(), connection.cursor() as cursor:
        df = _copy_out(
            cursor,
            _TRIPLES,
            ["kind", "value", "customer_id"],
            {"kind": str, "value": str, "customer_id": "int64"},
        )
    df = df[df["kind"].isin([k for k, rule in rules.kinds.items() if rule.merges])]
    phones = df["kind"] == "phone"
    if phones.any():
        df.loc[phones, "value"] = normalise_phones(df.loc[phones, "value"])
    df = df[df["value"].notna() & (df["value"] != "")]
    blocked_any = {v for k, v in rules.blocked if k == ""}
    folded = df["value"].str.lower()
    blocked = folded.isin(blocked_any)
    for kind in {k for k, _v in rules.blocked if k}:
        listed = {v for k, v in rules.blocked if k == kind}
        blocked |= (df["kind"] == kind) & folded.isin(listed)
    return df[~blocked].drop_duplicates(["kind", "value", "customer_id"]).reset_index(drop=True)


def components_find(df: pd.DataFrame, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For customers in `order` (oldest first): each one's component label, over the bipartite graph
    customer — value."""
    n = len(order)
    position = pd.Series(np.arange(n), index=order)
    rows = position.reindex(df["customer_id"].to_numpy()).to_numpy()
    keep = ~np.isnan(rows)
    codes, _uniques = pd.factorize(pd.MultiIndex.from_arrays([df["kind"], df["value"]]))
    rows, cols = rows[keep].astype(np.int64), codes[keep] + n
    size = n + (int(codes.max()) + 1 if len(codes) else 0)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    _count, labels = connected_components(graph, directed=False)
    return labels[:n], position.index.to_numpy()


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
        bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if len(labels) else []
        return [chunk.tolist() for chunk in np.split(ids, bounds[1:])] if len(ids) else []


def _over_limit_labels(df: pd.DataFrame, groups: Groups, rules: IdentityRules) -> np.ndarray:
    """The labels of the groups whose profiles, were they one, would hold more values of a kind than its
    limit: the graph's values, plus the stored identifiers of kinds that do not merge (not in the graph)."""
    limits = {k: r.max_per_profile for k, r in rules.kinds.items() if r.max_per_profile is not None}
    if not limits or not len(groups.ids):
        return np.zeros(0, dtype=np.int64)
    label_of = pd.Series(groups.labels, index=groups.ids)
    held = df[df["kind"].isin(list(limits)) & df["customer_id"].isin(groups.ids)]
    counts = (
        held.assign(label=label_of.reindex(held["customer_id"].to_numpy()).to_numpy())
        .drop_duplicates(["label", "kind", "value"])
        .groupby(["label", "kind"])
        .size()
    )
    silent = [k for k in limits if not rules.kinds[k].merges]
    if silent:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id, kind, count(*) FROM crm_tags_customeridentifier "
                "WHERE kind = ANY(%s) AND customer_id = ANY(%s) GROUP BY 1, 2",
                [silent, groups.ids.tolist()],
            )
            stored = pd.DataFrame(cursor.fetchall(), columns=["customer_id", "kind", "n"])
        if EXTERNAL_ID in silent:  # each profile keeps its own external id as one, stored or not
            own = pd.DataFrame({"customer_id": groups.ids, "kind": EXTERNAL_ID, "n": 1})
            stored = pd.concat([stored[stored["kind"] != EXTERNAL_ID], own])
        stored["label"] = label_of.reindex(stored["customer_id"].to_numpy()).to_numpy()
        counts = counts.add(stored.groupby(["label", "kind"])["n"].sum(), fill_value=0)
    if counts.empty:
        return np.zeros(0, dtype=np.int64)
    limit = counts.index.get_level_values("kind").map(limits).to_numpy(dtype=float)
    return np.unique(counts.index.get_level_values("label").to_numpy()[counts.to_numpy() > limit])


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
    started = time.monotonic()
    rules = identity_rules()
    report = BatchReport()
    df = triples_load(rules)
    order = np.array(
        Customer.objects.order_by("created_at", "pk").values_list("pk", flat=True), dtype=np.int64
    )
    report.customers, report.identifiers = len(order), len(df)
    labels, ids = components_find(df, order)
    groups = Groups.of(labels, ids, only)
    report.groups = groups.count
    report.profiles_to_merge = len(groups.ids) - report.groups
    sample = groups.lists(np.isin(groups.labels, np.unique(groups.labels)[:SAMPLE]))
    external = dict(
        Customer.objects.filter(pk__in=[pk for g in sample for pk in g]).values_list("pk", "external_id")
    )
    report.sample = [[external[pk] for pk in group] for group in sample]
    if dry_run:
        report.seconds = time.monotonic() - started
        return report
    owner = pd.Series(order, index=order)
    complex_labels = _over_limit_labels(df, groups, rules)
    plain = ~np.isin(groups.labels, complex_labels)
    losers = plain & (groups.ids != groups.survivors)
    pairs = np.column_stack([groups.survivors[losers], groups.ids[losers]])
    # a batch ends at a group's end: the first pair of every batch_size-th group starts a new one
    group_starts = (
        np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]) if len(pairs) else np.zeros(0, int)
    )
    cuts = [*group_starts[::batch_size].tolist()[1:], len(pairs)] if len(pairs) else []
    total, done, begin = report.groups, 0, 0
    for end in cuts:
        batch = [tuple(p) for p in pairs[begin:end].tolist()]
        merged = customers_merge_bulk(pairs=batch, by=by, source="batch")
        owner[list(merged)] = list(merged.values())
        report.merged += len(merged)
        done += len({s for s, _l in batch})
        begin = end
        if progress is not None:
            progress(done, total)
    for group in groups.lists(~plain):
        _group_merge_one_by_one(group, df, rules, by, report, owner)
        done += 1
        if progress is not None and (done % batch_size == 0 or done == total):
            progress(done, total)
    report.identifiers_added = identifiers_store(df, owner, rules)
    if report.merged:
        tags_rebuild_after_merge()
    report.seconds = time.monotonic() - started
    log.info(
        "resolved identities: %s merged, %s refused in %.1fs", report.merged, report.refused, report.seconds
    )
    return report


@transaction.atomic
def _group_merge_one_by_one(
    group: list[int],
    df: pd.DataFrame,
    rules: IdentityRules,
    by: User | None,
    report: BatchReport,
    owner: pd.Series,
) -> None:
    """A group that would pass a limit as one profile: its profiles merge into the oldest one by one, each
    that would take a kind past its limit refused (counting the values the profiles will hold, not only
    those stored so far)."""
    rows = df[df["customer_id"].isin(group)]
    values = {cid: set(zip(g["kind"], g["value"], strict=True)) for cid, g in rows.groupby("customer_id")}
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
            owner[loser_id] = survivor.pk
            report.merged += 1


_STORE = """
WITH fresh AS (
    SELECT s.kind, s.value, s.owner, s.ord FROM crm_identity_stage s
    WHERE NOT EXISTS (SELECT 1 FROM crm_tags_customeridentifier i WHERE i.kind = s.kind AND i.value = s.value)
), held AS (
    SELECT customer_id, kind, count(*) AS n FROM crm_tags_customeridentifier
    WHERE customer_id IN (SELECT owner FROM fresh) AND kind = ANY(%(limited)s) GROUP BY 1, 2
), numbered AS (
    SELECT f.*, COALESCE(h.n, 0) + row_number() OVER (PARTITION BY f.owner, f.kind ORDER BY f.ord) AS n
    FROM fresh f LEFT JOIN held h ON h.customer_id = f.owner AND h.kind = f.kind
)
INSERT INTO crm_tags_customeridentifier (kind, value, customer_id, created_at)
SELECT n.kind, n.value, n.owner, now() FROM numbered n
LEFT JOIN unnest(%(limited)s::text[], %(limits)s::int[]) AS l(kind, max) ON l.kind = n.kind
WHERE l.max IS NULL OR n.n <= l.max
ON CONFLICT DO NOTHING
"""


@transaction.atomic
def identifiers_store(df: pd.DataFrame, owner: pd.Series, rules: IdentityRules) -> int:
    """Store each value as an identifier of its profile (the oldest holder wins; within each kind's limit,
    counting what the profile holds already), with one statement. A profile's own external id is not
    stored: it resolves through the customer row (a merged profile's was stored by its merge). Returns
    how many were added."""
    if df.empty:
        return 0
    df = df.assign(owner=owner.reindex(df["customer_id"].to_numpy()).to_numpy())
    df = df[df["owner"].notna() & ~((df["kind"] == EXTERNAL_ID) & (df["customer_id"] == df["owner"]))]
    # a value two profiles still hold (their merge refused) goes to the older one: ids rise with age
    df = df.astype({"owner": np.int64}).sort_values("owner", kind="stable").drop_duplicates(["kind", "value"])
    if df.empty:
        return 0
    limited = {k: r.max_per_profile for k, r in rules.kinds.items() if r.max_per_profile is not None}
    buffer = io.StringIO()
    df[["kind", "value", "owner"]].to_csv(buffer, header=False, index=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_identity_stage (ord bigint, kind text, value text, owner bigint) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY crm_identity_stage (ord, kind, value, owner) FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            copy.write(buffer.getvalue())
        cursor.execute("ANALYZE crm_identity_stage")
        cursor.execute(_STORE, {"limited": list(limited), "limits": list(limited.values())})
        added = cursor.rowcount
        cursor.execute("DROP TABLE crm_identity_stage")
        return added
