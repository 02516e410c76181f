"""Who is on call: a weekly rotation with overrides, as plain values (no database), plus the look-ups
that read a team's rota from the database.

A rota's shifts begin at its handovers: the handover weekday and time of day on the company's wall clock
(settings.TIME_ZONE), the first one on or after the rotation's start date. Shift k (k = 0, 1, ...) belongs to
member k mod n. An override puts a person on call from one instant to another; where overrides overlap,
the latest one (highest id) wins. `until` is the first instant after which someone else is on call (an
override that hands back to the same person does not end the shift); None when nobody else ever is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.UTC


@dataclass(frozen=True)
class Override:
    user_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    order: int = 0  # the later override wins where two overlap


@dataclass(frozen=True)
class Rota:
    """A rotation as plain values: member ids in order, the start date and the handover on the wall clock."""

    members: Sequence[int]
    starts_on: dt.date
    handover_weekday: int
    handover_time: dt.time
    tz: ZoneInfo
    overrides: Sequence[Override] = field(default_factory=tuple)

    def first_handover(self) -> dt.datetime:
        """The first shift's start (UTC): the first handover on or after the start date."""
        days = (self.handover_weekday - self.starts_on.weekday()) % 7
        day = self.starts_on + dt.timedelta(days=days)
        return self._at(day)

    def _at(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.handover_time, tzinfo=self.tz).astimezone(UTC)

    def handover(self, k: int) -> dt.datetime:
        """The start of shift k on the wall clock (a week is seven calendar days, whatever the offset does)."""
        first = self.first_handover().astimezone(self.tz).date()
        return self._at(first + dt.timedelta(days=7 * k))

    def shift_index(self, at: dt.datetime) -> int | None:
        """The shift running at `at` (None before the first handover)."""
        at = at.astimezone(UTC)
        first = self.first_handover()
        if at < first:
            return None
        k = (at - first).days // 7
        # the wall-clock week may be an hour longer or shorter than 7 × 24 h: step to the right one
        while k > 0 and self.handover(k) > at:
            k -= 1
        while self.handover(k + 1) <= at:
            k += 1
        return k

    def base_user(self, at: dt.datetime) -> int | None:
        if not self.members:
            return None
        k = self.shift_index(at)
        return None if k is None else self.members[k % len(self.members)]

    def override_at(self, at: dt.datetime) -> Override | None:
        covering = [o for o in self.overrides if o.starts_at <= at < o.ends_at]
        return max(covering, key=lambda o: o.order) if covering else None

    def user_at(self, at: dt.datetime) -> int | None:
        """Who is on call at `at`: an override's person, else the rotation's."""
        chosen = self.override_at(at)
        return chosen.user_id if chosen is not None else self.base_user(at)

    def until(self, at: dt.datetime) -> dt.datetime | None:
        """When the person on call at `at` stops being on call (None: never, or nobody is on call)."""
        at = at.astimezone(UTC)
        who = self.user_at(at)
        if who is None:
            return None
        for moment in self._changes_after(at):
            if self.user_at(moment) != who:
                return moment
        return None

    def _changes_after(self, at: dt.datetime):  # noqa: ANN202 (a generator of datetimes)
        """Every instant after `at` at which the person on call may change, in order: override edges, and
        handovers for as long as a change can still come from the rotation (n + 1 shifts past the last
        override cover every member once)."""
        edges = sorted({t for o in self.overrides for t in (o.starts_at, o.ends_at) if t > at})
        last_edge = edges[-1] if edges else at
        n = len(self.members)
        handovers: list[dt.datetime] = []
        if n:
            k = self.shift_index(at)
            k = -1 if k is None else k
            end_k = (self.shift_index(last_edge) or 0) + n + 1
            handovers = [self.handover(i) for i in range(max(k + 1, 0), max(end_k, k + 2) + 1)]
        yield from sorted(set(edges) | {h for h in handovers if h > at})

    def next_person(self, at: dt.datetime) -> tuple[int | None, dt.datetime | None]:
        """Who takes over when the current person's time ends, and when."""
        end = self.until(at)
        if end is None:
            return None, None
        return self.user_at(end), end


# --- from the database ---------------------------------------------------------------------------------


def company_zone() -> ZoneInfo:
    from django.conf import settings

    return ZoneInfo(settings.TIME_ZONE)


def rota_plain(rota) -> Rota:  # noqa: ANN001 (an OnCallRota with members and overrides loaded)
    """Plain values of an OnCallRota (uses prefetched members and overrides when present)."""
    return Rota(
        members=[m.user_id for m in sorted(rota.members.all(), key=lambda m: m.position)],
        starts_on=rota.starts_on,
        handover_weekday=rota.handover_weekday,
        handover_time=rota.handover_time,
        tz=company_zone(),
        overrides=[
            Override(user_id=o.user_id, starts_at=o.starts_at, ends_at=o.ends_at, order=o.pk)
            for o in rota.overrides.all()
        ],
    )


@dataclass(frozen=True)
class OnCall:
    """The answer of the on-call look-up."""

    team_id: int
    user_id: int | None
    until: dt.datetime | None
    next_user_id: int | None = None


def rota_for_team(team_id: int):  # noqa: ANN201 (OnCallRota | None)
    """The team's rota with its members and its overrides (three queries), or None."""
    from tickets.models import OnCallRota

    return (
        OnCallRota.objects.filter(team_id=team_id)
        .select_related("team", "lead", "calendar")
        .prefetch_related("members__user", "overrides__user")
        .first()
    )


def on_call(team_id: int, at: dt.datetime) -> OnCall:
    """Who is on call for the team at `at`, until when, and who is next."""
    rota = rota_for_team(team_id)
    if rota is None:
        return OnCall(team_id=team_id, user_id=None, until=None)
    plain = rota_plain(rota)
    nxt, until = plain.next_person(at)
    return OnCall(team_id=team_id, user_id=plain.user_at(at), until=until, next_user_id=nxt)


def responsible_rota(team_id: int):  # noqa: ANN201 (OnCallRota | None)
    """The rota that answers for a ticket of this team: the team's own, else the support team's."""
    from tickets.models import OnCallRota

    own = rota_for_team(team_id)
    if own is not None:
        return own
    support = (
        OnCallRota.objects.filter(team__is_support=True)
        .order_by("team__name")
        .values_list("team_id", flat=True)
        .first()
    )
    return rota_for_team(support) if support is not None else None
