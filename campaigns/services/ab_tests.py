"""A/B tests: their design, their variants' counts (entered or imported) and their statistics."""

from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from campaigns.abtest import VariantCounts, evaluate
from campaigns.models import ABTest, ABVariant, Campaign
from campaigns.services.guards import _require_edit
from campaigns.services.import_cells import _parse_count
from config.csv_import import ErrorCollector, read_rows
from config.inputs import INT32_MAX, InvalidInput, whole_number


def _variant_count(value: Any, field: str) -> int:
    """A variant's exposures or conversions: a whole number its column holds (a ValidationError naming it)."""
    try:
        return whole_number(value, minimum=0, maximum=INT32_MAX)
    except InvalidInput as exc:
        raise ValidationError({field: exc.as_form_error()}) from exc


@transaction.atomic
def ab_test_create(
    *,
    campaign: Campaign,
    by: User,
    name: str,
    variants: list[dict[str, Any]],
    min_sample: int | None = None,
    planned_sample: int | None = None,
    baseline_rate: Decimal | float | None = None,
    sequential: str | None = "",
) -> ABTest:
    """Create an A/B test with its variants (the first is the control) and its design: the planned
    sample per variant, the expected control rate and the sequential method, fixed from now on."""
    _require_edit(by, campaign)
    sequential = sequential or ""
    if sequential and baseline_rate is None:
        # The mSPRT's mixture is sized from the plan's effect, which needs the expected rate up front.
        raise ValidationError(
            {"baseline_rate": _("A sequential test needs the expected control conversion rate.")}
        )
    if len(variants) < 2:
        raise ValidationError({"variants": _("An A/B test needs at least two variants.")})
    names = [str(v["name"]).strip() for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError({"variants": _("Variant names must differ.")})
    for index, v in enumerate(variants):
        for key in ("exposures", "conversions"):
            v[key] = _variant_count(v.get(key, 0), f"variants[{index}].{key}")
        if v["conversions"] > v["exposures"]:
            raise ValidationError({"variants": _("Conversions cannot exceed exposures.")})
    test = ABTest(
        campaign=campaign,
        name=name.strip(),
        min_sample=min_sample or 1000,
        planned_sample=planned_sample,
        baseline_rate=None
        if baseline_rate is None
        else Decimal(str(baseline_rate)).quantize(Decimal("0.000001")),
        sequential=sequential,
        created_by=by,
    )
    test.full_clean()
    test.save()
    ABVariant.objects.bulk_create(
        [
            ABVariant(
                test=test,
                name=n,
                position=i,
                exposures=int(v.get("exposures", 0)),
                conversions=int(v.get("conversions", 0)),
            )
            for i, (n, v) in enumerate(zip(names, variants, strict=True))
        ]
    )
    audit_record(
        actor=by,
        action="campaign.ab_test_create",
        obj=test,
        changes={
            "campaign": campaign.code,
            "name": test.name,
            "variants": names,
            "planned_sample": test.planned_sample,
            "baseline_rate": None if test.baseline_rate is None else str(test.baseline_rate),
            "sequential": test.sequential,
        },
    )
    return test


@transaction.atomic
def ab_variant_update(*, variant: ABVariant, by: User, exposures: int, conversions: int) -> ABVariant:
    """Enter a variant's current exposures and conversions."""
    variant = ABVariant.objects.select_for_update().select_related("test__campaign").get(pk=variant.pk)
    _require_edit(by, variant.test.campaign)
    exposures = _variant_count(exposures, "exposures")
    conversions = _variant_count(conversions, "conversions")
    if conversions > exposures:
        raise ValidationError({"conversions": _("Conversions cannot exceed exposures.")})
    old = [variant.exposures, variant.conversions]
    variant.exposures, variant.conversions = exposures, conversions
    variant.save(update_fields=["exposures", "conversions"])
    audit_record(
        actor=by,
        action="campaign.ab_variant",
        obj=variant,
        changes={"counts": [old, [exposures, conversions]]},
    )
    return variant


VARIANT_COLUMNS = ["name", "exposures", "conversions"]


@transaction.atomic
def ab_variants_import(*, test: ABTest, upload: IO[bytes] | IO[str], by: User) -> int:
    """Set variants' exposures and conversions from CSV (name, exposures, conversions), all or nothing.

    A name the test does not have yet is added as a new variant after the existing ones.
    """
    test = ABTest.objects.select_for_update().select_related("campaign").get(pk=test.pk)
    _require_edit(by, test.campaign)
    _header, rows = read_rows(upload, VARIANT_COLUMNS)
    errors = ErrorCollector()
    values: dict[str, tuple[int, int]] = {}
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        name = (record.get("name") or "").strip()
        if not name or len(name) > 100:
            errors.add(number, "name", _("Required, at most 100 characters."))
        elif name in values:
            errors.add(number, "name", _("Variant names must differ."))
        exposures = _parse_count(
            record.get("exposures") or "", "exposures", number, errors, maximum=INT32_MAX
        )
        conversions = _parse_count(
            record.get("conversions") or "", "conversions", number, errors, maximum=INT32_MAX
        )
        if exposures is not None and conversions is not None and conversions > exposures:
            errors.add(number, "conversions", _("Conversions cannot exceed exposures."))
        if errors.full:
            break
        if name and exposures is not None and conversions is not None:
            values[name] = (exposures, conversions)
    errors.raise_if_any()
    existing = {v.name: v for v in test.variants.all()}
    position = max((v.position for v in existing.values()), default=-1)
    changed = []
    for name, (exposures, conversions) in values.items():
        variant = existing.get(name)
        if variant is None:
            position += 1
            ABVariant.objects.create(
                test=test, name=name, position=position, exposures=exposures, conversions=conversions
            )
        else:
            variant.exposures, variant.conversions = exposures, conversions
            changed.append(variant)
    ABVariant.objects.bulk_update(changed, ["exposures", "conversions"])
    audit_record(actor=by, action="campaign.ab_variants_import", obj=test, changes={"rows": len(values)})
    return len(values)


def ab_test_result(test: ABTest) -> dict[str, Any]:
    """The statistics for a test whose variants are loaded (prefetch `variants`)."""
    counts = [VariantCounts(v.name, v.exposures, v.conversions) for v in test.variants.all()]
    return evaluate(
        counts,
        test.min_sample,
        planned_sample=test.planned_sample,
        baseline_rate=None if test.baseline_rate is None else float(test.baseline_rate),
        sequential=test.sequential or None,
    )
