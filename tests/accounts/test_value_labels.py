"""Stored codes and minute counts read as words (issue 18, item 10)."""

import pytest
from django.utils import translation

from accounts.value_labels import channel_label, event_label, gender_label, minutes_label


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (30, "30 minutes"),
        (60, "1 hour"),
        (90, "1 hour 30 minutes"),
        (180, "3 hours"),
        (10800, "180 hours"),
        (0, "0 minutes"),
    ],
)
def test_minutes_read_as_a_duration(minutes, words):
    with translation.override("en"):
        assert minutes_label(minutes) == words


def test_a_value_that_is_not_a_number_of_minutes_shows_as_it_is():
    assert minutes_label("soon") == "soon"
    assert minutes_label(None) == ""


def test_known_codes_have_labels_and_unknown_ones_show_as_recorded():
    with translation.override("en"):
        assert channel_label("mini_program") == "Mini program"
        assert channel_label("WeChat") == "WeChat"
        assert channel_label("kuaishou") == "kuaishou"
        assert gender_label("f") == "Female"
        assert gender_label("nonbinary") == "nonbinary"
        assert event_label("page_view") == "Page view"
        assert channel_label("") == gender_label(None) == ""
