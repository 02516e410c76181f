"""Who is in an audience now, as one SQL statement: a tag's members, or a campaign's audience (include tags,
any or all, minus exclude tags); never who withdrew personalisation, and with a channel purpose only who may
be reached for it (privacy.consent's predicates). A sync stages this set (snapshot) or its difference from
the destination's baseline (delta: entered / exited) in one `INSERT … SELECT`."""

from dataclasses import dataclass
from typing import Any

from django.db import connection

from privacy import consent

ANALYZE_AFTER = 1_000  # baseline rows added by one sync that refresh its statistics


@dataclass(frozen=True)
class Audience:
    """A tag (by id) or a campaign's include / exclude tags; `key` names its baseline at a destination."""

    kind: str  # "tag" or "campaign"
    pk: int
    label: str
    include: tuple[str, ...] = ()
    include_mode: str = "any"
    exclude: tuple[str, ...] = ()

    def key(self, purpose: str) -> str:
        return f"{self.kind}:{self.pk}:{purpose}"


def audience_of_tag(tag: Any) -> Audience:
    return Audience(kind="tag", pk=tag.pk, label=tag.slug)


def audience_of_campaign(campaign: Any) -> Audience:
    return Audience(
        kind="campaign",
        pk=campaign.pk,
        label=campaign.code or campaign.name,
        include=tuple(sorted(set(campaign.audience_include))),
        include_mode=campaign.audience_include_mode,
        exclude=tuple(sorted(set(campaign.audience_exclude))),
    )


def _members_sql(audience: Audience) -> tuple[str, list[Any]]:
    """SQL of the audience's customer ids (column `customer_id`), before any consent filter."""
    if audience.kind == "tag":
        return "SELECT m.customer_id FROM crm_tags_tagmembership m WHERE m.tag_id = %s", [audience.pk]
    if not audience.include:
        return "SELECT NULL::bigint AS customer_id WHERE false", []
    if audience.include_mode == "all":
        inner = (
            "SELECT m.customer_id FROM crm_tags_tagmembership m JOIN crm_tags_tag t ON t.id = m.tag_id "
            "WHERE t.slug = ANY(%s) GROUP BY m.customer_id HAVING count(DISTINCT m.tag_id) = %s"
        )
        params: list[Any] = [list(audience.include), len(audience.include)]
    else:
        inner = (
            "SELECT DISTINCT m.customer_id FROM crm_tags_tagmembership m "
            "JOIN crm_tags_tag t ON t.id = m.tag_id WHERE t.slug = ANY(%s)"
        )
        params = [list(audience.include)]
    if audience.exclude:
        inner = (
            f"SELECT i.customer_id FROM ({inner}) i WHERE NOT EXISTS (SELECT 1 FROM "  # noqa: S608
            "crm_tags_tagmembership x JOIN crm_tags_tag xt ON xt.id = x.tag_id "
            "WHERE xt.slug = ANY(%s) AND x.customer_id = i.customer_id)"
        )
        params.append(list(audience.exclude))
    return inner, params


def _allowed_sql(column: str, purpose: str) -> tuple[str, list[Any]]:
    """The consent filter: never who withdrew personalisation; with a purpose, only who may be reached."""
    where = f"NOT {consent.personalisation_withdrawn_sql(column)}"
    params: list[Any] = []
    if purpose:
        sql, params = consent.purpose_allowed_sql(column, purpose)
        where = f"{where} AND {sql}"
    return where, params


def current_sql(audience: Audience, purpose: str) -> tuple[str, list[Any]]:
    """SQL of the audience's customer ids that the purpose lets through."""
    inner, params = _members_sql(audience)
    allowed, allowed_params = _allowed_sql("a.customer_id", purpose)
    return (
        f"SELECT a.customer_id FROM ({inner}) a WHERE {allowed}",  # noqa: S608 - built from checked parts
        [*params, *allowed_params],
    )


def counts(audience: Audience, purpose: str) -> tuple[int, int]:
    """(members before the consent filter, members it lets through): one statement."""
    inner, params = _members_sql(audience)
    allowed, allowed_params = _allowed_sql("a.customer_id", purpose)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {allowed}) FROM ({inner}) a",  # noqa: S608
            [*allowed_params, *params],
        )
        total, allowed_count = cursor.fetchone()
    return total, allowed_count


def stage(*, run_id: int, destination_id: int, audience: Audience, purpose: str, delta: bool) -> None:
    """Write the run's set into journeys_syncmember: its members (snapshot), or who entered and who exited
    since the destination's baseline (delta). One statement."""
    current, params = current_sql(audience, purpose)
    key = audience.key(purpose)
    with connection.cursor() as cursor:
        if not delta:
            cursor.execute(
                "INSERT INTO journeys_syncmember (run_id, customer_id, change) "  # noqa: S608
                f"SELECT %s, c.customer_id, 'member' FROM ({current}) c",
                [run_id, *params],
            )
            return
        # no CTEs: the planner sees both sides with their statistics and anti-joins them by hash (a CTE
        # scanned per baseline row made 20,000 members take 30 s)
        cursor.execute(
            "INSERT INTO journeys_syncmember (run_id, customer_id, change) "  # noqa: S608
            f"SELECT %s, c.customer_id, 'entered' FROM ({current}) c "
            "WHERE NOT EXISTS (SELECT 1 FROM journeys_syncbaseline b WHERE b.destination_id = %s "
            "AND b.audience = %s AND b.customer_id = c.customer_id) "
            "UNION ALL SELECT %s, b.customer_id, 'exited' FROM journeys_syncbaseline b "
            "WHERE b.destination_id = %s AND b.audience = %s "
            f"AND NOT EXISTS (SELECT 1 FROM ({current}) c WHERE c.customer_id = b.customer_id)",
            [run_id, *params, destination_id, key, run_id, destination_id, key, *params],
        )


def baseline_move(*, run_id: int, destination_id: int, key: str, delta: bool) -> None:
    """After a successful run: the baseline becomes what the destination now holds (a delta applied, or the
    snapshot's members). In the caller's transaction."""
    with connection.cursor() as cursor:
        if delta:
            cursor.execute(
                "DELETE FROM journeys_syncbaseline b USING journeys_syncmember s "
                "WHERE s.run_id = %s AND s.change = 'exited' AND b.destination_id = %s AND b.audience = %s "
                "AND b.customer_id = s.customer_id",
                [run_id, destination_id, key],
            )
            change = "entered"
        else:
            cursor.execute(
                "DELETE FROM journeys_syncbaseline b WHERE b.destination_id = %s AND b.audience = %s "
                "AND NOT EXISTS (SELECT 1 FROM journeys_syncmember s WHERE s.run_id = %s "
                "AND s.customer_id = b.customer_id)",
                [destination_id, key, run_id],
            )
            change = "member"
        cursor.execute(
            "INSERT INTO journeys_syncbaseline (destination_id, audience, customer_id) "
            "SELECT %s, %s, s.customer_id FROM journeys_syncmember s WHERE s.run_id = %s AND s.change = %s "
            "ON CONFLICT (destination_id, audience, customer_id) DO NOTHING",
            [destination_id, key, run_id, change],
        )
        if cursor.rowcount >= ANALYZE_AFTER:
            # a baseline that grew by many rows at once: fresh statistics, so the next delta's anti-joins are
            # planned by hash, not as a loop over rows the planner believes are few
            cursor.execute("ANALYZE journeys_syncbaseline")
        cursor.execute("DELETE FROM journeys_syncmember WHERE run_id = %s", [run_id])
