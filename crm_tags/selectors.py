"""Reads for customers and tags, scoped to the person asking (contact data masked without view_pii)."""

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone
from psycopg import errors as pg_errors

from accounts.models import User
from crm_tags import permissions
from crm_tags.models import Customer, Event, Tag, TagBuild, TagCategory, TagMembership
from crm_tags.rules import compile_rule, parse_as_of, tune_session_for_rules
from privacy import consent, personal_data

log = logging.getLogger(__name__)

PREVIEW_SAMPLE = 20


class PreviewCancelled(RuntimeError):
    """The preview ran past its statement timeout or was cancelled by its requester."""


# --- customers -----------------------------------------------------------------------------------


def customers_shown(
    customers: Iterable[Customer], *, user: User | AnonymousUser, what: str = "", kind: str = "customer_list"
) -> list[Customer]:
    """Set the `<field>_shown` values (name, email, phone, birth_date, attributes) on each customer as the
    viewer may see them (personal_data decides), and log the read when they are unmasked."""
    customers = personal_data.apply_to_customers(customers, viewer=user)
    if customers:
        personal_data.record_unmasked(
            viewer=user,
            kind=kind,
            customer=customers[0] if len(customers) == 1 and kind == "customer" else None,
            rows=len(customers),
            what=what,
        )
    return customers


def customers_for_user(
    *, user: User | AnonymousUser, q: str = "", tag: str = "", signup_month: date | None = None
) -> QuerySet[Customer]:
    """Customers a person may list, searched by external id (and by name, e-mail or phone for people who may
    see them: a search on a hidden value would reveal it), filtered by a tag slug and by the month they
    signed up in (the viewer's time zone; the cohort dashboard links here)."""
    if not permissions.can_view_customers(user):
        return Customer.objects.none()
    qs = Customer.objects.all()
    q = q.strip()
    if q:
        search = Q(external_id=q)
        if personal_data.can_see(user):
            search |= Q(name__icontains=q) | Q(email__icontains=q) | Q(phone=q)
        qs = qs.filter(search)
    if tag:
        qs = qs.filter(
            Exists(TagMembership.objects.filter(customer=OuterRef("pk"), tag__slug=tag)),
        )
    if signup_month is not None:
        zone = timezone.get_current_timezone()
        start = datetime(signup_month.year, signup_month.month, 1, tzinfo=zone)
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=zone)
        qs = qs.filter(signup_at__gte=start, signup_at__lt=end)
    return qs.order_by("external_id")


def customer_get_for_user(*, user: User | AnonymousUser, external_id: str) -> Customer:
    """One customer by external id (404 when missing or out of reach), personal values as the viewer may
    see them (an unmasked read is logged)."""
    if not permissions.can_view_customers(user):
        raise Http404
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise Http404
    customers_shown([customer], user=user, kind="customer", what=customer.external_id)
    return customer


def customer_tags(*, customer: Customer) -> QuerySet[TagMembership]:
    """The customer's current tags with the date each was gained."""
    return (
        TagMembership.objects.filter(customer=customer)
        .select_related("tag", "tag__category")
        .order_by("-since")
    )


def customer_events(*, customer: Customer) -> QuerySet[Event]:
    """The customer's events, newest first (paginate it)."""
    return Event.objects.filter(customer=customer).order_by("-occurred_at", "-id")


# --- tags ------------------------------------------------------------------------------------------


def tags_visible_to(user: User | AnonymousUser) -> QuerySet[Tag]:
    """Tags a person may see (every tag for anyone signed in; contact data is what stays masked)."""
    if not user.is_authenticated:
        return Tag.objects.none()
    return Tag.objects.select_related("category", "current_version").order_by("name")


def tag_get_for_user(*, user: User | AnonymousUser, slug: str) -> Tag:
    """One tag by slug, 404 outside the person's reach."""
    tag = tags_visible_to(user).filter(slug=slug).first()
    if tag is None:
        raise Http404
    return tag


def tag_tree(*, user: User | AnonymousUser) -> list[tuple[TagCategory | None, list[Tag]]]:
    """Categories with their tags (tags without a category last). Two queries."""
    tags = list(tags_visible_to(user))
    categories = list(TagCategory.objects.all())
    tree: list[tuple[TagCategory | None, list[Tag]]] = []
    for category in categories:
        members = [t for t in tags if t.category_id == category.pk]
        tree.append((category, members))
    loose = [t for t in tags if t.category_id is None]
    if loose:
        tree.append((None, loose))
    return tree


def tag_builds(*, tag: Tag) -> QuerySet[TagBuild]:
    """A tag's builds, newest first."""
    return (
        TagBuild.objects.filter(tag=tag)
        .select_related("version", "created_by")
        .order_by("-created_at", "-id")
    )


def tag_build_get(*, tag: Tag, build_id: int) -> TagBuild:
    build = tag_builds(tag=tag).filter(pk=build_id).first()
    if build is None:
        raise Http404
    return build


def tag_members(*, tag: Tag) -> QuerySet[TagMembership]:
    """Members of a tag with their customer, in external-id order."""
    return TagMembership.objects.filter(tag=tag).select_related("customer").order_by("customer__external_id")


def _reachable_for(purpose: str) -> list[RawSQL]:
    """The filter keeping the members a channel purpose may reach (none without a purpose)."""
    if not purpose:
        return []
    sql, params = consent.purpose_allowed_sql('"crm_tags_tagmembership"."customer_id"', purpose)
    return [RawSQL(sql, params, output_field=BooleanField())]


def tag_members_rows(*, tag: Tag, user: User | AnonymousUser, purpose: str = "") -> Iterator[list[Any]]:
    """All members as CSV rows (external id, name, email, phone, city, since), personal values as the
    viewer may see them; an unmasked export is logged with its row count when it has been streamed."""
    qs = (
        TagMembership.objects.filter(*_reachable_for(purpose), tag=tag)
        .order_by("customer__external_id")
        .values_list(
            "customer__external_id",
            "customer__name",
            "customer__email",
            "customer__phone",
            "customer__city",
            "since",
        )
    )
    rows = (
        [external_id, name, email, phone, city or "", since.isoformat()]
        for external_id, name, email, phone, city, since in qs.iterator(chunk_size=5000)
    )
    count = 0
    for row in personal_data.shown_rows(rows, viewer=user, columns={1: "name", 2: "email", 3: "phone"}):
        count += 1
        yield row
    personal_data.record_unmasked(viewer=user, kind="export", rows=count, what=f"tag {tag.slug} members CSV")


def audience_count(*, include: list[str], include_mode: str = "any", exclude: Iterable[str] = ()) -> int:
    """Customers in any (or all) of the include tags and in none of the exclude tags. One query."""
    include = sorted(set(include))
    exclude = sorted(set(exclude))
    if not include:
        return 0
    if include_mode == "all":
        inner = (
            "SELECT m.customer_id FROM crm_tags_tagmembership m JOIN crm_tags_tag t ON t.id = m.tag_id "
            "WHERE t.slug = ANY(%s) GROUP BY m.customer_id HAVING count(DISTINCT m.tag_id) = %s"
        )
        params: list[Any] = [include, len(include)]
    else:
        inner = (
            "SELECT DISTINCT m.customer_id FROM crm_tags_tagmembership m JOIN crm_tags_tag t ON t.id = m.tag_id "
            "WHERE t.slug = ANY(%s)"
        )
        params = [include]
    # whoever withdrew personalisation leaves the audience at once, before the tags' next build
    sql = (
        f"SELECT count(*) FROM ({inner}) x WHERE NOT EXISTS ("  # noqa: S608
        "SELECT 1 FROM crm_tags_tagmembership m2 JOIN crm_tags_tag t2 ON t2.id = m2.tag_id "
        "WHERE t2.slug = ANY(%s) AND m2.customer_id = x.customer_id) "
        f"AND NOT {consent.personalisation_withdrawn_sql('x.customer_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, exclude])
        return cursor.fetchone()[0]


# --- preview ---------------------------------------------------------------------------------------


@dataclass
class Preview:
    matched: int
    total: int
    share: float
    enter: int
    exit: int
    sample: list[dict[str, Any]]
    as_of: datetime
    rollout_percent: int
    # rule matches a build would leave out: they withdrew consent to personalisation
    excluded_by_consent: int = 0


def _preview_key(user: User | AnonymousUser, preview_id: str) -> str:
    # the id is the client's text: hashed, so any characters make a well-formed cache key
    digest = hashlib.sha256(preview_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"crm-preview:{getattr(user, 'pk', 0)}:{digest}"


def tag_preview(
    *,
    tag: Tag,
    definition: dict,
    user: User | AnonymousUser,
    as_of: datetime | None = None,
    rollout_percent: int = 100,
    preview_id: str = "",
) -> Preview:
    """What a (validated) rule would match: counts, share, enter/exit against the current membership,
    and a sample with the values behind each match. Bounded by a statement timeout; cancellable by id.
    """
    as_of = parse_as_of(as_of) if as_of is not None else timezone.now()  # InvalidInput out of range
    rollout = (tag.pk, rollout_percent)
    timeout = int(getattr(settings, "CRM_PREVIEW_TIMEOUT_MS", 60_000))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true), pg_backend_pid()", [str(timeout)]
            )
            pid = cursor.fetchone()[1]
            tune_session_for_rules(cursor)
            if preview_id:
                cache.set(_preview_key(user, preview_id), pid, timeout=timeout // 1000 + 5)
            # compiled in the transaction: a back-test of computed values computes them into a temporary
            # table of it (bounded by the timeout, cancellable)
            counted = compile_rule(definition, as_of=as_of, rollout=rollout)
            # m is what a build would keep: the rule's matches (r) less who withdrew personalisation
            cursor.execute(
                f"WITH r AS MATERIALIZED ({counted.sql}), "  # noqa: S608
                "m AS MATERIALIZED (SELECT customer_id FROM r WHERE NOT "
                f"{consent.personalisation_withdrawn_sql('r.customer_id')}) SELECT "
                "(SELECT count(*) FROM m), (SELECT customers FROM crm_tags_customercount), "
                "(SELECT count(*) FROM m WHERE NOT EXISTS (SELECT 1 FROM crm_tags_tagmembership t "
                "WHERE t.tag_id = %s AND t.customer_id = m.customer_id)), "
                "(SELECT count(*) FROM crm_tags_tagmembership t WHERE t.tag_id = %s), "
                "(SELECT array_agg(customer_id) FROM (SELECT customer_id FROM m ORDER BY customer_id LIMIT %s) x), "
                "(SELECT count(*) FROM r)",
                [*counted.params, tag.pk, tag.pk, PREVIEW_SAMPLE],
            )
            matched, total, enter, members, sample_ids, rule_matched = cursor.fetchone()
            # members who stay are matched - enter; everyone else leaves
            exit_ = members - (matched - enter)
            rows: list[tuple] = []
            # the values behind each match, computed for the sample only
            valued = compile_rule(definition, as_of=as_of, with_values=True, only_ids=sample_ids or [])
            if sample_ids:
                cursor.execute(
                    f"SELECT c.external_id, s.* FROM ({valued.sql}) s "  # noqa: S608
                    "JOIN crm_tags_customer c ON c.id = s.customer_id ORDER BY c.external_id",
                    valued.params,
                )
                rows = cursor.fetchall()
    except OperationalError as exc:
        if isinstance(exc.__cause__, pg_errors.QueryCanceled):
            raise PreviewCancelled(str(exc.__cause__)) from exc
        raise
    finally:
        if preview_id:
            cache.delete(_preview_key(user, preview_id))
    sample = [
        {
            "external_id": row[0],
            "values": personal_data.sample_values_for(
                {label: _plain(v) for label, v in zip(valued.labels, row[2:], strict=True)}, viewer=user
            ),
        }
        for row in rows
    ]
    if sample and any(personal_data.is_personal(label) for label in valued.labels):
        personal_data.record_unmasked(
            viewer=user, kind="preview", rows=len(sample), what=f"tag {tag.slug} preview"
        )
    return Preview(
        matched=matched,
        total=total,
        share=round(matched / total, 4) if total else 0.0,
        enter=enter,
        exit=exit_,
        sample=sample,
        as_of=as_of,
        rollout_percent=rollout_percent,
        excluded_by_consent=rule_matched - matched,
    )


def _plain(value: Any) -> Any:
    """JSON-friendly sample values (numbers stay numbers)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def preview_cancel(*, user: User | AnonymousUser, preview_id: str) -> bool:
    """Cancel a running preview started by the same person; True when one was running."""
    pid = cache.get(_preview_key(user, preview_id))
    if not pid:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", [pid])
        return bool(cursor.fetchone()[0])
