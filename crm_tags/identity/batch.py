"""Batch resolution of an existing base: the identifier graph's connected components, found set-based.

(kind, value, customer) triples stream from Postgres (stored identifiers, the e-mail and phone columns,
the identifier attributes, external ids); values are normalised and junk dropped with vectorised pandas
operations; scipy's `connected_components` on the sparse customer-value graph finds who is one person;
each component merges into its oldest profile in batches (one transaction each), and the values are then
stored as identifiers of their profile within the limits per kind.
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from django.db import connection, transaction
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from accounts.models import User
from crm_tags.identity.merge import MergeRefused, customers_merge, tags_rebuild_after_merge
from crm_tags.identity.normalise import IdentifierInvalid, normalise_phone
from crm_tags.identity.rules import IdentityRules, identity_rules
from crm_tags.models import Customer

log = logging.getLogger(__name__)

STREAM_CHUNK = 50_000
SAMPLE = 5

# every (kind, value, customer) the base holds; e-mail trimmed and lower-cased here, phones in Python
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


@lru_cache(maxsize=200_000)
def _phone(value: str) -> str | None:
    try:
        return normalise_phone(value)
    except IdentifierInvalid:
        return None


def triples_load(rules: IdentityRules) -> pd.DataFrame:
    """The graph's edges: normalised, unblocked values of merging kinds, one row per (kind, value, customer)."""
    frames = []
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(_TRIPLES)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            frames.append(pd.DataFrame(rows, columns=["kind", "value", "customer_id"]))
    if not frames:
        return pd.DataFrame({"kind": [], "value": [], "customer_id": []})
    df = pd.concat(frames, ignore_index=True)
    phones = df["kind"] == "phone"
    df.loc[phones, "value"] = df.loc[phones, "value"].map(_phone)
    df = df.dropna(subset=["value"])
    df = df[df["kind"].isin([k for k, rule in rules.kinds.items() if rule.merges])]
    blocked_any = {v for k, v in rules.blocked if k == ""}
    blocked = pd.Series(list(zip(df["kind"], df["value"].str.lower(), strict=True)), index=df.index).isin(
        rules.blocked
    ) | df["value"].str.lower().isin(blocked_any)
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


def resolve_identities(
    *,
    dry_run: bool = False,
    batch_size: int = 500,
    by: User | None = None,
    progress: Callable[[int, int], None] | None = None,
    only: set[int] | None = None,
) -> BatchReport:
    """Find (and unless `dry_run`, merge) the profiles that are one person; see the module's docstring.
    `only`: merge just the groups that hold one of these customers (an import's, say: the hook imports
    call once they write customers)."""
    started = time.monotonic()
    rules = identity_rules()
    report = BatchReport()
    df = triples_load(rules)
    order = np.array(
        Customer.objects.order_by("created_at", "pk").values_list("pk", flat=True), dtype=np.int64
    )
    report.customers, report.identifiers = len(order), len(df)
    labels, ids = components_find(df, order)
    groups = pd.Series(ids).groupby(labels).agg(list)
    groups = groups[groups.map(len) > 1]
    if only is not None:
        groups = groups[groups.map(lambda group: not only.isdisjoint(group))]
    report.groups = len(groups)
    report.profiles_to_merge = int(groups.map(len).sum() - len(groups)) if len(groups) else 0
    external = dict(
        Customer.objects.filter(pk__in=[pk for g in groups.iloc[:SAMPLE] for pk in g]).values_list(
            "pk", "external_id"
        )
    )
    report.sample = [[external[pk] for pk in group] for group in groups.iloc[:SAMPLE]]
    if dry_run:
        report.seconds = time.monotonic() - started
        return report
    owner = dict(zip(order.tolist(), order.tolist(), strict=True))
    group_list = groups.tolist()
    in_groups = df[df["customer_id"].isin([pk for group in group_list for pk in group])]
    values = in_groups.groupby("customer_id")[["kind", "value"]].apply(
        lambda g: set(zip(g["kind"], g["value"], strict=True))
    )
    for start in range(0, len(group_list), batch_size):
        with transaction.atomic():
            for group in group_list[start : start + batch_size]:
                survivor = Customer.objects.get(pk=group[0])
                held = set(values.get(group[0], set()))
                for loser_id in group[1:]:
                    # the limits count the values the profiles will hold, not only those stored so far
                    theirs = values.get(loser_id, set())
                    if rules.over_limit(Counter(kind for kind, _value in held | theirs).items()):
                        report.refused += 1
                        continue
                    held |= theirs
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
                        owner[loser_id] = survivor.pk
                        report.merged += 1
        if progress is not None:
            progress(min(start + batch_size, len(group_list)), len(group_list))
    report.identifiers_added = identifiers_store(df, owner, rules)
    if report.merged:
        tags_rebuild_after_merge()
    report.seconds = time.monotonic() - started
    log.info(
        "resolved identities: %s merged, %s refused in %.1fs", report.merged, report.refused, report.seconds
    )
    return report


@transaction.atomic
def identifiers_store(df: pd.DataFrame, owner: dict[int, int], rules: IdentityRules) -> int:
    """Store each value as an identifier of its profile (the oldest holder wins; within each kind's limit,
    counting what the profile holds already). Returns how many were added."""
    if df.empty:
        return 0
    df = df.assign(owner=df["customer_id"].map(owner)).dropna(subset=["owner"])
    # a value two profiles still hold (their merge refused) goes to the older one: ids rise with age
    df = df.astype({"owner": np.int64}).sort_values("owner", kind="stable").drop_duplicates(["kind", "value"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, kind, count(*) FROM crm_tags_customeridentifier GROUP BY 1, 2")
        held = pd.DataFrame(cursor.fetchall(), columns=["owner", "kind", "held"])
        cursor.execute("SELECT kind, value FROM crm_tags_customeridentifier")
        stored = pd.DataFrame(cursor.fetchall(), columns=["kind", "value"])
    df = df.merge(stored.assign(stored=True), on=["kind", "value"], how="left")
    df = df[df["stored"].isna()].drop(columns="stored")
    df = df.merge(held, on=["owner", "kind"], how="left").fillna({"held": 0})
    df["n"] = df.groupby(["owner", "kind"]).cumcount() + 1 + df["held"]
    limits = df["kind"].map({k: r.max_per_profile for k, r in rules.kinds.items()})
    df = df[limits.isna() | (df["n"] <= limits)]
    if df.empty:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_identity_stage (kind text, value text, customer_id bigint) ON COMMIT DROP"
        )
        with cursor.copy("COPY crm_identity_stage (kind, value, customer_id) FROM STDIN") as copy:
            for row in df[["kind", "value", "owner"]].itertuples(index=False):
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO crm_tags_customeridentifier (kind, value, customer_id, created_at) "
            "SELECT kind, value, customer_id, now() FROM crm_identity_stage ON CONFLICT DO NOTHING"
        )
        return cursor.rowcount
