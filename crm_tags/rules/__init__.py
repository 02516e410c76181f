"""The tag rule language: validation (errors named by their path in the tree) and the SQL compiler.

A rule compiles to ONE parameterised statement that returns the ids of matching customers. Every
leaf is a two-valued predicate (a comparison with a missing value is false, never NULL), so `not`
is the exact complement. `as_of` ends every window: leaves ignore events after it and
`window_days: N` covers `(as_of - N days, as_of]`.

Semantics of event leaves over the events of type T (in the window, up to `as_of`):
count = number of events; sum = sum of the non-null amounts (0 when none);
avg / min / max over the non-null amounts, NULL (so false) when none;
days_since_last = as_of - the last event, infinite when there is none (only > and >= match).
"""

# One package, by concern; every name is here as it was when this was one module.
from crm_tags.rules.compiler import (  # noqa: F401
    CompiledRule,
    _compare,
    _Compiler,
    _Source,
    compile_rule,
    gray_filter,
    tune_session_for_rules,
)
from crm_tags.rules.ranked import (  # noqa: F401
    MAX_RANK,
    rank_of,
    ranked_leaf,
)
from crm_tags.rules.validation import (  # noqa: F401
    AGGREGATES,
    AGGS,
    ATTR_OPS,
    ATTRIBUTE_KEY,
    BUILTIN_FIELDS,
    COMPUTED_FIELDS,
    DATE_FIELDS,
    DATETIME_FIELDS,
    EVENT_FIELDS,
    EVENT_TYPE,
    GROUPS,
    MAX_DAYS_SINCE,
    MAX_DEPTH,
    MAX_EVENT_VALUE,
    MAX_LIST,
    MAX_WINDOW_DAYS,
    NUMERIC_OPS,
    SQL_OPS,
    TEXT_FIELDS,
    RuleError,
    RuleInvalid,
    _check_scalar,
    _is_number,
    _join,
    _validate_attr,
    _validate_event,
    _validate_node,
    _validate_tag,
    parse_as_of,
    parse_datetime_value,
    rule_dependencies,
    validate_rule,
)
