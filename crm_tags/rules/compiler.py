"""The SQL compiler of the rule language: one parameterised statement returning the matching customer ids
(the semantics are in the package's docstring)."""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg.types.json import Jsonb

from crm_tags.rules.ranked import ranked_leaf
from crm_tags.rules.validation import (
    AGGREGATES,
    ATTRIBUTE_KEY,
    COMPUTED_FIELDS,
    DATE_FIELDS,
    SQL_OPS,
    TEXT_FIELDS,
    _is_number,
    parse_datetime_value,
)

log = logging.getLogger(__name__)


@dataclass
class _Source:
    """One per-customer aggregate subquery over events of one type (and window)."""

    alias: str
    event: str
    window_days: int | None
    columns: set[str] = field(default_factory=set)
    inner: bool = False


@dataclass
class CompiledRule:
    """`sql` selects `customer_id` (plus labelled value columns when compiled with values)."""

    sql: str
    params: list[Any]
    labels: list[str]


class _Compiler:
    def __init__(
        self,
        as_of: datetime,
        with_values: bool,
        only_ids: list[int] | None = None,
        values_table: str = "crm_tags_customervalue",
    ) -> None:
        self.only_ids = only_ids
        self.values_table = values_table
        self.as_of = as_of
        self.with_values = with_values
        self.sources: dict[tuple[str, int | None], _Source] = {}
        self.uses_customer = False
        self.values: list[tuple[str, str, list[Any]]] = []  # (label, sql, params)
        self.cid = "c.id"
        self.rank_leaf: tuple[dict, int] | None = None  # the leaf driving from ranks, when one does

    # sources
    def source(self, event: str, window: int | None, columns: set[str]) -> _Source:
        key = (event, window)
        if key not in self.sources:
            self.sources[key] = _Source(alias=f"e{len(self.sources)}", event=event, window_days=window)
        self.sources[key].columns |= columns
        return self.sources[key]

    def source_parts(self, src: _Source) -> tuple[str, str, list[Any]]:
        """The aggregates of a source as SQL over raw events and over the lifetime totals, and the
        parameters of its statement (a window's: type, start, end; all time's: type and as_of, three times)."""
        cols = sorted(src.columns) or ["n"]
        raw_cols = ", ".join(f"{AGGREGATES[c][0]} AS {c}" for c in cols)
        total_cols = ", ".join(f"{AGGREGATES[c][1]} AS {c}" for c in cols)
        if src.window_days is not None:
            return raw_cols, total_cols, [src.event, self.as_of - timedelta(days=src.window_days), self.as_of]
        return raw_cols, total_cols, [src.event, self.as_of] * 3

    def source_sql(self, src: _Source) -> tuple[str, list[Any]]:
        raw_cols, total_cols, params = self.source_parts(src)
        if src.window_days is not None:
            sql = (
                f"SELECT customer_id, {raw_cols} FROM crm_tags_event "  # noqa: S608
                f"WHERE event_type = %s AND occurred_at > %s AND occurred_at <= %s GROUP BY customer_id"
            )
            return sql, params
        # all time: the exact lifetime totals, except for customers with events after as_of
        sql = (
            f"SELECT customer_id, {total_cols} FROM crm_tags_customereventtotal "  # noqa: S608
            "WHERE event_type = %s AND last_at <= %s "
            f"UNION ALL SELECT customer_id, {raw_cols} FROM crm_tags_event "
            "WHERE event_type = %s AND occurred_at <= %s AND customer_id IN ("
            "SELECT customer_id FROM crm_tags_customereventtotal WHERE event_type = %s AND last_at > %s"
            ") GROUP BY customer_id"
        )
        return sql, params

    # nodes -> (boolean SQL that is never NULL, params)
    def node(self, node: dict, top_and: bool = False) -> tuple[str, list[Any]]:
        if "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            parts = [self.node(child, top_and=top_and and key == "all") for child in node[key]]
            joiner = " AND " if key == "all" else " OR "
            return "(" + joiner.join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]
        if "not" in node:
            sql, params = self.node(node["not"])
            return f"(NOT {sql})", params
        if "attr" in node:
            return self.attr(node)
        if "event" in node:
            return self.event(node, top_and)
        return self.tag(node)

    def tag(self, node: dict) -> tuple[str, list[Any]]:
        exists = (
            "EXISTS (SELECT 1 FROM crm_tags_tagmembership m WHERE m.customer_id = {cid} AND m.tag_id = "
            "(SELECT t.id FROM crm_tags_tag t WHERE t.slug = %s))"
        )
        sql = exists if node.get("has", True) else f"NOT {exists}"
        self.value_column(f"tag:{node['tag']}", exists, [node["tag"]])
        return sql, [node["tag"]]

    def value_column(self, label: str, sql: str, params: list[Any]) -> None:
        if self.with_values and label not in {v[0] for v in self.values}:
            self.values.append((label, sql, params))

    def attr(self, node: dict) -> tuple[str, list[Any]]:
        name, op, value = node["attr"], node["op"], node.get("value")
        if name in COMPUTED_FIELDS:
            # the value (stored, or as of a back-test's day), looked up per customer through its primary
            # key (NULL when none)
            column = (
                f"(SELECT v.{COMPUTED_FIELDS[name]} FROM {self.values_table} v"  # noqa: S608 (known names)
                " WHERE v.customer_id = {cid})"
            )
            kind = "segment" if name == "rfm_segment" else "number"
        else:
            self.uses_customer = True
            column = f"c.{name}"
            kind = "text" if name in TEXT_FIELDS else ("date" if name in DATE_FIELDS else "datetime")
        match = ATTRIBUTE_KEY.match(name)
        if match:
            return self.json_attr(match.group(1), name, op, value)
        self.value_column(name, f"{column}::text", [])
        if op == "is_null":
            return (f"({column} IS NULL)" if value else f"({column} IS NOT NULL)"), []

        def conv(v: Any) -> Any:
            if kind == "date":
                return date.fromisoformat(v)
            if kind == "datetime":
                return parse_datetime_value(v)
            if kind == "number":
                return float(v)
            return v

        ordered = f'{column} COLLATE "C"' if kind == "text" else column
        if op == "contains":
            return f"COALESCE(strpos({column}, %s) > 0, false)", [value]
        if op == "in":
            return f"COALESCE({column} = ANY(%s), false)", [[conv(v) for v in value]]
        if op == "not_in":
            return f"COALESCE({column} <> ALL(%s), false)", [[conv(v) for v in value]]
        if op == "between":
            return f"COALESCE({ordered} >= %s AND {ordered} <= %s, false)", [conv(value[0]), conv(value[1])]
        return f"COALESCE({ordered} {SQL_OPS[op]} %s, false)", [conv(value)]

    def json_attr(self, key: str, label: str, op: str, value: Any) -> tuple[str, list[Any]]:
        j = "(c.attributes -> %s)"
        present = f"({j} IS NOT NULL AND jsonb_typeof({j}) <> 'null')"
        self.value_column(label, "c.attributes ->> %s", [key])
        if op == "is_null":
            return (f"(NOT {present})" if value else present), [key, key]
        if op == "=":
            return f"COALESCE({j} = %s, false)", [key, Jsonb(value)]
        if op == "!=":
            return f"({present} AND {j} <> %s)", [key, key, key, Jsonb(value)]
        scalar = f"COALESCE(jsonb_typeof({j}) IN ('string', 'number', 'boolean'), false)"
        if op == "in":
            return f"({scalar} AND jsonb_build_array({j}) <@ %s)", [key, key, Jsonb(value)]
        if op == "not_in":
            return (
                f"({present} AND NOT ({scalar} AND jsonb_build_array({j}) <@ %s))",
                [key, key, key, key, Jsonb(value)],
            )
        if op == "contains":
            return (
                f"(COALESCE(jsonb_typeof({j}) = 'string' AND strpos(c.attributes ->> %s, %s) > 0, false) OR "
                f"COALESCE(jsonb_typeof({j}) = 'array' AND {j} @> jsonb_build_array(%s::text), false))",
                [key, key, value, key, key, value],
            )
        ends = value if op == "between" else [value]
        if _is_number(ends[0]):
            typed = "number"
            expr = f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN (c.attributes ->> %s)::numeric END)"
            conv = [Decimal(str(v)) for v in ends]
        else:
            typed = "string"
            expr = f"(CASE WHEN jsonb_typeof({j}) = 'string' THEN (c.attributes ->> %s) END) COLLATE \"C\""
            conv = list(ends)
        del typed
        eparams = [key, key]
        if op == "between":
            return f"COALESCE({expr} >= %s AND {expr} <= %s, false)", [*eparams, conv[0], *eparams, conv[1]]
        return f"COALESCE({expr} {SQL_OPS[op]} %s, false)", [*eparams, conv[0]]

    def event(self, node: dict, top_and: bool) -> tuple[str, list[Any]]:
        if top_and and self.rank_leaf is not None and node is self.rank_leaf[0]:
            return "true", []  # the driver (ranked_sql) selects exactly the customers it holds for
        agg, op, value = node["agg"], node["op"], node["value"]
        window = node.get("window_days")
        label = f"{node['event']}_{agg}" + (f"_{window}d" if window else "")
        if agg == "days_since_last":
            src = self.source(node["event"], None, {"last"})
            last = f"{src.alias}.last"
            self.value_column(label, f"round(extract(epoch FROM (%s - {last})) / 86400, 2)", [self.as_of])
            if op == "between":
                lo, hi = (self.as_of - timedelta(days=v) for v in value)
                return f"COALESCE({last} >= %s AND {last} <= %s, false)", [hi, lo]
            cutoff = self.as_of - timedelta(days=value)
            # days since = as_of - last; compare it with N days by comparing last with as_of - N days
            flipped = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "<>"}[op]
            if op in (">", ">="):
                return f"({last} IS NULL OR {last} {flipped} %s)", [cutoff]
            return f"COALESCE({last} {flipped} %s, false)", [cutoff]
        ends = [Decimal(str(v)) for v in (value if op == "between" else [value])]
        if agg == "avg":
            src = self.source(node["event"], window, {"s", "ac"})
            s, ac = f"{src.alias}.s", f"{src.alias}.ac"
            self.value_column(label, f"round({s} / NULLIF({ac}, 0), 2)", [])
            # compare sum with value * count: exact, no rounding of the average
            if op == "between":
                sql = f"COALESCE({ac} > 0 AND {s} >= %s * {ac} AND {s} <= %s * {ac}, false)"
            else:
                sql = f"COALESCE({ac} > 0 AND {s} {SQL_OPS[op]} %s * {ac}, false)"
            strict = True
        else:
            column = {"count": "n", "sum": "s", "min": "mn", "max": "mx"}[agg]
            src = self.source(node["event"], window, {column})
            ref = f"{src.alias}.{column}"
            expr = f"COALESCE({ref}, 0)" if agg in ("count", "sum") else ref
            self.value_column(label, expr, [])
            if op == "between":
                sql = f"COALESCE({expr} >= %s AND {expr} <= %s, false)"
            else:
                sql = f"COALESCE({expr} {SQL_OPS[op]} %s, false)"
            strict = agg in ("min", "max") or not _compare(Decimal(0), op, ends)
        if top_and and strict:
            # false for anyone without such events: drive the query from this aggregate
            src.inner = True
        return sql, list(ends)

    def ranked_sql(self) -> tuple[str, list[Any]]:
        """The customers with at least k events of type T in the window, from the ranks of (T, k): one
        range scan returning only them. The ranks answer this only when (T, k) is registered and no
        event of T is after as_of (a back-test, or events dated ahead); otherwise the grouped window
        gives the same customers. Both conditions are read by the statement itself (one-time filters),
        so it is exact whatever an import commits between compiling and running it."""
        node, k = self.rank_leaf  # type: ignore[misc]
        event, start = node["event"], self.as_of - timedelta(days=node["window_days"])
        ready = (
            "(EXISTS (SELECT 1 FROM crm_tags_rankedcount WHERE event_type = %s AND k = %s) AND NOT EXISTS ("
            "SELECT 1 FROM crm_tags_event WHERE event_type = %s AND occurred_at > %s))"
        )
        ready_params = [event, k, event, self.as_of]
        # OFFSET 0 keeps the second condition above the grouped window, so that, when the ranks
        # answer, it does not even start the parallel workers of a scan it will not run
        sql = (
            f"SELECT customer_id FROM crm_tags_eventrank WHERE event_type = %s AND k = %s "  # noqa: S608
            f"AND occurred_at > %s AND {ready} UNION ALL SELECT customer_id FROM ("
            "SELECT customer_id FROM crm_tags_event WHERE event_type = %s AND occurred_at > %s "
            f"AND occurred_at <= %s GROUP BY customer_id HAVING count(*) >= %s OFFSET 0) w WHERE NOT {ready}"
        )
        return sql, [event, k, start, *ready_params, event, start, self.as_of, k, *ready_params]

    def lateral_sql(self, src: _Source) -> tuple[str, list[Any]]:
        """The aggregates of one customer (`{cid}`), found through the customer-first indexes: a row with
        count 0 / NULLs when a window holds no events, no row when an all-time total is missing — the
        same values the grouped subquery gives that customer."""
        raw_cols, total_cols, params = self.source_parts(src)
        if src.window_days is not None:
            sql = (
                f"SELECT {raw_cols} FROM crm_tags_event WHERE customer_id = {{cid}} "  # noqa: S608
                "AND event_type = %s AND occurred_at > %s AND occurred_at <= %s"
            )
            return sql, params
        # the raw events are read only for a customer with events after as_of; whether any event of
        # the type is after it is read once per statement, so usually no customer is even looked at
        sql = (
            f"SELECT {total_cols} FROM crm_tags_customereventtotal "  # noqa: S608
            "WHERE customer_id = {cid} AND event_type = %s AND last_at <= %s "
            f"UNION ALL SELECT {raw_cols} FROM crm_tags_event "
            "WHERE customer_id = {cid} AND event_type = %s AND occurred_at <= %s "
            "AND EXISTS (SELECT 1 FROM crm_tags_event WHERE event_type = %s AND occurred_at > %s) AND EXISTS ("
            "SELECT 1 FROM crm_tags_customereventtotal WHERE customer_id = {cid} AND event_type = %s "
            "AND last_at > %s) HAVING count(*) > 0"
        )
        return sql, [*params[:4], src.event, self.as_of, *params[4:]]

    def compile(
        self, definition: dict, extra_where: str = "", extra_params: list | None = None
    ) -> CompiledRule:
        if self.only_ids is None and not self.with_values:
            self.rank_leaf = ranked_leaf(definition)
        where, where_params = self.node(definition, top_and=True)
        inner = [s for s in self.sources.values() if s.inner]
        from_sql: list[str] = []
        from_params: list[Any] = []
        if self.only_ids is not None:
            # a handful of customers (the preview's sample): every aggregate looked up per customer
            from_sql.append("crm_tags_customer c")
            for src in self.sources.values():
                sub, params = self.lateral_sql(src)
                from_sql.append(f"LEFT JOIN LATERAL ({sub.replace('{cid}', self.cid)}) {src.alias} ON true")
                from_params += params
        elif inner or self.rank_leaf is not None:
            # A leaf of the top-level AND that is false for anyone without such events drives the
            # statement: its grouped aggregate (one range scan of a window, or of the totals) gives
            # the candidates, and every other aggregate is looked up per candidate through the
            # customer-first indexes instead of being computed for every customer.
            # A "count >= k in N days" leaf drives from the ranks: a scan of the matches only.
            driver: _Source | None = None
            if self.rank_leaf is not None:
                self.cid = "r.customer_id"
                sub, params = self.ranked_sql()
                # in customer order: the lookups per candidate then walk the indexes in order
                from_sql.append(f"({sub} ORDER BY 1) r")
            else:
                driver = min(inner, key=lambda s: (s.window_days is None, s.window_days or 0, s.alias))
                self.cid = f"{driver.alias}.customer_id"
                sub, params = self.source_sql(driver)
                from_sql.append(f"({sub}) {driver.alias}")
            from_params += params
            if self.uses_customer:
                from_sql.append(f"JOIN crm_tags_customer c ON c.id = {self.cid}")
            for src in self.sources.values():
                if src is driver:
                    continue
                sub, params = self.lateral_sql(src)
                sub = sub.replace("{cid}", self.cid)
                from_sql.append(f"LEFT JOIN LATERAL ({sub}) {src.alias} ON true")
                from_params += params
        else:
            from_sql.append("crm_tags_customer c")
            for src in self.sources.values():
                sub, params = self.source_sql(src)
                from_sql.append(f"LEFT JOIN ({sub}) {src.alias} ON {src.alias}.customer_id = {self.cid}")
                from_params += params
        if self.only_ids is not None:
            where_params = [*where_params, self.only_ids]
            where = f"{where} AND {self.cid} = ANY(%s)"
        where = where.replace("{cid}", self.cid)
        select = [f"{self.cid} AS customer_id"]
        select_params: list[Any] = []
        labels: list[str] = []
        for label, sql, params in self.values:
            select.append(sql.replace("{cid}", self.cid))
            select_params += params
            labels.append(label)
        sql = f"SELECT {', '.join(select)} FROM {' '.join(from_sql)} WHERE {where}"  # noqa: S608
        params = select_params + from_params + where_params
        if extra_where:
            sql += " AND " + extra_where.replace("{cid}", self.cid)
            params += extra_params or []
        return CompiledRule(sql=sql, params=params, labels=labels)


def _compare(left: Decimal, op: str, ends: list[Decimal]) -> bool:
    if op == "between":
        return ends[0] <= left <= ends[1]
    return {
        "=": left == ends[0],
        "!=": left != ends[0],
        ">": left > ends[0],
        ">=": left >= ends[0],
        "<": left < ends[0],
        "<=": left <= ends[0],
    }[op]


def compile_rule(
    definition: dict,
    *,
    as_of: datetime | None = None,
    with_values: bool = False,
    rollout: tuple[int, int] | None = None,
    only_ids: list[int] | None = None,
) -> CompiledRule:
    """One SQL statement selecting `customer_id` of every customer the (validated) rule matches.

    `rollout=(tag_id, percent)` keeps only the gray group: hash(tag id, customer id) mod 100 < P.
    `only_ids` restricts every part of the statement to those customers (preview samples).

    Computed attributes (RFM, CLV, lead score) are the stored values, unless `as_of` is before the day
    they were computed as of: then they are the values as of the last day that had ended by `as_of`
    (what the daily job would have computed then), computed into a temporary table of the current
    transaction (so a back-test with computed leaves is compiled, and run, inside one; outside a
    transaction the stored values are read, with a warning logged).
    """
    values_table = "crm_tags_customervalue"
    if as_of is not None and _reads_computed(definition):
        from crm_tags.value.store import backtest_day, customer_values_as_of

        day = backtest_day(as_of)
        if day is not None and connection.in_atomic_block:
            values_table = customer_values_as_of(day)
        elif day is not None:  # a temporary table would not outlive this statement's autocommit
            log.warning("computed values as of %s need a transaction: the stored ones are read", day)
    compiler = _Compiler(as_of or timezone.now(), with_values, only_ids, values_table)
    if rollout is not None and rollout[1] < 100:
        return compiler.compile(definition, *gray_filter(rollout[0], rollout[1]))
    return compiler.compile(definition)


def _reads_computed(node: Any) -> bool:
    """Whether a (validated) rule has a computed-attribute leaf."""
    if not isinstance(node, dict):
        return False
    if node.get("attr") in COMPUTED_FIELDS:
        return True
    children = [*node.get("all", []), *node.get("any", [])]
    if "not" in node:
        children.append(node["not"])
    return any(_reads_computed(child) for child in children)


def tune_session_for_rules(cursor: Any) -> None:
    """Inside a transaction: no JIT (the row estimates of joined aggregates are huge, which would make
    Postgres spend longer compiling than running), and per-customer aggregates of a window computed by
    both cores: a parallel index-only range scan, each worker sorting its part, merged and grouped in
    order. Measured at 1 M customers / 20 M events, grouping the 1.3 M page views of 30 days by
    customer took 2.3-2.5 s with one hash aggregate, 1.5 s with a parallel scan feeding it, and 1.1 s
    sorted in parallel and merged (the bare count(*) floor: 0.48 s). Starting workers still costs
    (the default setup cost, ~9 ms measured here), so a small scan, such as the ranks' range of ~11 k
    candidates, stays in one process."""
    cursor.execute(
        "SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true), "
        "set_config('enable_hashagg', 'off', true), set_config('parallel_setup_cost', '1000', true), "
        "set_config('parallel_tuple_cost', '0', true), set_config('min_parallel_index_scan_size', '0', true)"
    )


def gray_filter(tag_id: int, percent: int) -> tuple[str, list[Any]]:
    """SQL (with `{cid}` for the customer id column) true for the stable P % gray group of a tag."""
    return "mod(mod(hashint8extended({cid}::bigint, %s::bigint), 100) + 100, 100) < %s", [tag_id, percent]
