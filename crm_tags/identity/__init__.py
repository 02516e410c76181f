"""Identity resolution (OneID): one profile per person, whatever identifiers it arrives with.

pairs = identifiers_parse(request.data["identifiers"], identity_rules())
resolution = identifiers_resolve(identifiers=pairs, by=request.user)      # merges what the row links
merge = customers_merge(survivor=older, loser=newer, by=manager)
customers_unmerge(survivor=older, merge_id=merge.pk, by=manager)
"""

from crm_tags.identity.merge import MergeRefused, UnmergeRefused, customers_merge, customers_unmerge
from crm_tags.identity.normalise import IdentifierInvalid, normalise
from crm_tags.identity.resolve import (
    Resolution,
    identifiers_parse,
    identifiers_resolve,
    profile_resolve_or_create,
)
from crm_tags.identity.rules import IdentityRules, identity_rules

__all__ = [
    "IdentifierInvalid",
    "IdentityRules",
    "MergeRefused",
    "Resolution",
    "UnmergeRefused",
    "customers_merge",
    "customers_unmerge",
    "identifiers_parse",
    "identifiers_resolve",
    "identity_rules",
    "normalise",
    "profile_resolve_or_create",
]
