"""The rule builder's page and its refused previews (issue 18, items 2, 10 and 12): errors travel with
their path so the builder can show them beside their condition; choices reach the page in words."""

import json

import pytest
from django.urls import reverse

from crm_tags import services
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

BAD_VALUE = {
    "all": [
        {"event": "order", "agg": "count", "op": ">=", "value": 1},
        {"event": "order", "agg": "count", "op": ">=", "value": "abc"},
    ]
}


def _json_script(html: str, element_id: str):
    start = html.index(f'id="{element_id}" type="application/json">') + len(element_id) + 30
    return json.loads(html[start : html.index("</script>", start)])


def test_a_refused_preview_carries_each_error_with_its_path(client_for, agent):
    factories.rule_tag("loyal")

    response = client_for(agent).post(
        reverse("crm_tags:tag_preview", args=["loyal"]),
        {"definition": json.dumps(BAD_VALUE)},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert _json_script(html, "preview-errors-data") == [
        {"path": "all[1].value", "message": "must be a number"}
    ]
    assert 'id="preview-errors"' in html and "<code>all[1].value</code>" not in html


def test_a_refused_save_carries_the_errors_to_the_page(client_for, agent):
    factories.rule_tag("loyal")

    response = client_for(agent).post(
        reverse("crm_tags:tag_version_save", args=["loyal"]),
        {"definition": json.dumps(BAD_VALUE), "version": "0"},
    )

    assert response.status_code == 422
    errors = _json_script(response.content.decode(), "rule-errors-data")
    assert errors == [{"path": "all[1].value", "message": "must be a number"}]


def test_a_requester_may_not_preview(client_for, requester):
    factories.rule_tag("loyal")

    response = client_for(requester).post(
        reverse("crm_tags:tag_preview", args=["loyal"]), {"definition": json.dumps(BAD_VALUE)}
    )

    assert response.status_code == 403


def test_the_builder_gets_words_for_every_code_and_other_tags_by_name(client_for, agent):
    factories.rule_tag("loyal")
    services.tag_create(slug="vip", name="Very important", kind="manual", category="", by=agent)

    html = client_for(agent).get(reverse("crm_tags:tag_detail", args=["loyal"])).content.decode()

    labels = _json_script(html, "rule-builder-i18n")
    for key in ("aggs", "numericOps", "attrOps", "events", "fields", "kinds", "periods", "hasChoices"):
        assert all(code != words for code, words in labels[key]), key
    assert dict(labels["attrOps"])["not_in"] == "is none of"
    assert dict(labels["aggs"])["days_since_last"] == "Days since the last"
    assert labels["tags"] == [{"slug": "vip", "name": "Very important"}]
