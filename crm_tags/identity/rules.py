"""The merge rules as one read: which kinds exist and merge profiles, which are scoped by an app id, how
many values of a kind one profile may hold, and the block list of junk values."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from crm_tags.identity.normalise import OPENID, IdentifierInvalid, normalise
from crm_tags.models import BlockedIdentifier, IdentifierKind


@dataclass(frozen=True)
class KindRule:
    kind: str
    merges: bool = True
    scoped_by_app: bool = False
    max_per_profile: int | None = None


@dataclass
class IdentityRules:
    """The rules per kind and the block list (kind "" blocks a value in every kind)."""

    kinds: dict[str, KindRule] = field(default_factory=dict)
    blocked: set[tuple[str, str]] = field(default_factory=set)

    def rule(self, kind: str) -> KindRule:
        """The kind's rule (IdentifierInvalid for a kind nobody defined)."""
        try:
            return self.kinds[kind]
        except KeyError:
            raise IdentifierInvalid(
                kind,
                _("Unknown identifier kind; choose one of %(kinds)s.")
                % {"kinds": ", ".join(sorted(self.kinds))},
            ) from None

    def merges(self, kind: str) -> bool:
        return self.rule(kind).merges

    def is_blocked(self, kind: str, value: str) -> bool:
        """A junk value, as listed for this kind or for every kind (compared case-insensitively)."""
        folded = value.strip().lower()
        bare = folded.partition(":")[2] if kind == OPENID else folded
        return any((k, v) in self.blocked for k in (kind, "") for v in (folded, bare))

    def over_limit(self, counts: Iterable[tuple[str, int]]) -> list[str]:
        """Kinds whose count goes past the kind's limit per profile."""
        return sorted(
            kind for kind, n in counts if (limit := self.rule(kind).max_per_profile) is not None and n > limit
        )

    def combined_over_limit(self, *holdings: Counter) -> list[str]:
        """Kinds that would go past their limit if profiles with these identifier counts were one."""
        total: Counter = Counter()
        for held in holdings:
            total.update(held)
        return self.over_limit(total.items())


# The defaults the migration seeds, used as they are while the tables are empty (a database flushed by a
# test, say): kind -> (merges, scoped by app id, at most per profile).
BUILTIN_RULES = {
    "email": KindRule("email", True, False, 5),
    "phone": KindRule("phone", True, False, 5),
    "wechat_openid": KindRule("wechat_openid", True, True, 20),
    "wechat_unionid": KindRule("wechat_unionid", True, False, 1),
    "member_no": KindRule("member_no", True, False, 1),
    "external_id": KindRule("external_id", True, False, None),
}
BUILTIN_BLOCKED = {("email", "test@test.com"), ("phone", "+8613800000000"), ("", "null")}


def identity_rules() -> IdentityRules:
    """The current rules (two small tables, read per resolution)."""
    kinds = {
        kind.slug: KindRule(
            kind=kind.slug,
            merges=getattr(kind, "merge_rule", None) is None or kind.merge_rule.merges,
            scoped_by_app=bool(getattr(kind, "merge_rule", None) and kind.merge_rule.scoped_by_app),
            max_per_profile=kind.merge_rule.max_per_profile if getattr(kind, "merge_rule", None) else None,
        )
        for kind in IdentifierKind.objects.select_related("merge_rule")
    }
    blocked = {
        (kind, value.strip().lower())
        for kind, value in BlockedIdentifier.objects.values_list("kind", "value")
    }
    return IdentityRules(kinds=kinds or dict(BUILTIN_RULES), blocked=blocked or set(BUILTIN_BLOCKED))


def identifier_parse(raw: object, rules: IdentityRules, *, position: int = 0) -> tuple[str, str]:
    """One `{kind, value[, app_id]}` of a request as a normalised (kind, value); IdentifierInvalid names
    the position and what is wrong."""
    if not isinstance(raw, dict) or "kind" not in raw or "value" not in raw:
        raise IdentifierInvalid(
            f"identifiers[{position}]", _("Give each identifier as an object with kind and value.")
        )
    kind = raw["kind"]
    if not isinstance(kind, str):
        raise IdentifierInvalid(f"identifiers[{position}].kind", _("Give the kind as text."))
    rules.rule(kind)
    app_id = raw.get("app_id") or ""
    if not isinstance(app_id, str):
        raise IdentifierInvalid(f"identifiers[{position}].app_id", _("Give the app id as text."))
    return kind, normalise(kind, raw["value"], app_id)
