"""UTM links: trimmed, lower-cased, existing query strings kept."""

from urllib.parse import parse_qs, urlsplit

from campaigns.utm import build_utm_url


def test_values_are_trimmed_and_lower_cased():
    url = build_utm_url(
        url="https://shop.example.com/sale", source="  WeChat ", medium="Social", campaign="C618"
    )
    assert url == "https://shop.example.com/sale?utm_source=wechat&utm_medium=social&utm_campaign=c618"


def test_existing_query_string_and_fragment_are_kept():
    url = build_utm_url(url="https://x.example.com/p?id=7&ref=A#top", source="a", medium="b", campaign="c")
    parts = urlsplit(url)
    assert parse_qs(parts.query) == {
        "id": ["7"],
        "ref": ["A"],
        "utm_source": ["a"],
        "utm_medium": ["b"],
        "utm_campaign": ["c"],
    }
    assert parts.fragment == "top"


def test_old_utm_values_are_replaced_not_duplicated():
    url = build_utm_url(url="https://x.example.com/?utm_source=old", source="new", medium="m", campaign="c")
    assert parse_qs(urlsplit(url).query)["utm_source"] == ["new"]


def test_empty_content_and_term_are_left_out():
    url = build_utm_url(
        url="https://x.example.com/", source="s", medium="m", campaign="c", content=" ", term=""
    )
    assert "utm_content" not in url and "utm_term" not in url


def test_content_and_term_are_added():
    url = build_utm_url(
        url="https://x.example.com/", source="s", medium="m", campaign="c", content="Banner A", term="Shoes"
    )
    assert parse_qs(urlsplit(url).query)["utm_content"] == ["banner a"]
    assert parse_qs(urlsplit(url).query)["utm_term"] == ["shoes"]
