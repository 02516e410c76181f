"""Random rules over personal and plain fields, with the planted values as literals: whatever the rule, an
agent without view_pii never reads a planted value in a preview or in the versions (issue 15)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy import personal_data
from tests.crm_tags import factories
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE
from tests.privacy.test_masking import assert_clean

pytestmark = pytest.mark.django_db

PERSONAL = ["email", "phone", "name", "attributes.wechat_openid"]
PLAIN = ["city", "gender", "source_channel", "attributes.level"]
LITERALS = st.sampled_from([PLANTED_EMAIL, PLANTED_PHONE, PLANTED_NAME, "@", "139", "张", "Shanghai", "gold"])
# a name typed into a city condition is not a personal value of anyone's; an e-mail or phone number in
# any literal is masked all the same
PLAIN_LITERALS = st.sampled_from([PLANTED_EMAIL, PLANTED_PHONE, "@", "139", "Shanghai", "gold"])


@st.composite
def leaves(draw: st.DrawFn) -> dict:
    field = draw(st.sampled_from(PERSONAL + PLAIN))
    literals = LITERALS if field in PERSONAL else PLAIN_LITERALS
    op = draw(st.sampled_from(["=", "!=", "contains", "in", "not_in", "is_null", "between", ">="]))
    if op == "is_null":
        return {"attr": field, "op": op, "value": draw(st.booleans())}
    if op in ("in", "not_in"):
        return {"attr": field, "op": op, "value": draw(st.lists(literals, min_size=1, max_size=3))}
    if op == "between":
        return {"attr": field, "op": op, "value": sorted(draw(st.lists(literals, min_size=2, max_size=2)))}
    return {"attr": field, "op": op, "value": draw(literals)}


RULES = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=5,
)


@pytest.fixture
def world(db, manager, agent, requester):
    customer = factories.customer(
        external_id="PLANTED1",
        name=PLANTED_NAME,
        email=PLANTED_EMAIL,
        phone=PLANTED_PHONE,
        attributes={"wechat_openid": PLANTED_EMAIL, "level": "gold"},
    )
    factories.customer(external_id="OTHER1", name="李四", city="Beijing")
    factories.rule_tag("probe", by=None)
    return customer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=RULES)
def test_no_planted_value_reaches_a_viewer_without_view_pii(world, api_for, manager, agent, requester, rule):
    # a preview by the agent: refused when the rule reads a personal field, else without personal values
    preview = api_for(agent).post("/api/v1/tags/probe/preview/", {"definition": rule}, format="json")
    reads_personal = bool(personal_data.rule_personal_fields(rule))
    assert preview.status_code == (403 if reads_personal else 200) or preview.status_code == 400
    assert_clean(preview.content)

    # the manager (view_pii) saves it; the agent and a requester read the versions
    etag = api_for(manager).get("/api/v1/tags/probe/versions/")["ETag"]
    saved = api_for(manager).post(
        "/api/v1/tags/probe/versions/", {"definition": rule}, format="json", HTTP_IF_MATCH=etag
    )
    assert saved.status_code in (201, 400)
    for viewer in (agent, requester):
        versions = api_for(viewer).get("/api/v1/tags/probe/versions/")
        assert versions.status_code == 200
        assert_clean(versions.content)
