"""Article bodies go through the shared sanitiser: dangerous HTML removed, rich Markdown kept."""

from config.markdown import render_markdown


def test_script_tags_are_removed():
    html = render_markdown("Hello <script>alert('x')</script> world")
    assert "<script" not in html and "alert" not in html


def test_javascript_links_are_removed():
    html = render_markdown('[click](javascript:alert(1)) and <a href="javascript:alert(2)">b</a>')
    assert "javascript:" not in html


def test_event_handlers_are_removed():
    assert "onerror" not in render_markdown('<img src="x.png" onerror="alert(1)">')


def test_code_blocks_tables_and_images_are_kept():
    html = render_markdown(
        "```\nSELECT 1;\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![chart](/media/chart.png)"
    )
    assert "<pre><code>SELECT 1;" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<img alt="chart" src="/media/chart.png"' in html


OVERLAY = (
    '<div class="position-fixed top-0 start-0 w-100 h-100 bg-white">'
    '<a href="https://evil.example/login">Session expired</a></div>'
)


def test_the_overlay_from_issue_16_loses_its_classes():
    html = render_markdown(OVERLAY)
    assert "position-fixed" not in html and "w-100" not in html
    assert "<div>" in html


def test_the_overlays_link_is_marked_as_leaving_the_site():
    html = render_markdown(OVERLAY)
    assert 'rel="noopener noreferrer nofollow"' in html
    assert '</a> <small class="link-external">\u2197\u00a0evil.example</small>' in html


def test_no_class_survives_on_any_tag():
    html = render_markdown('<span class="d-none">a</span><p class="alert">b</p><code class="btn">c</code>')
    assert "class=" not in html


def test_a_fenced_code_blocks_language_is_kept():
    assert '<code class="language-sql">' in render_markdown("```sql\nSELECT 1;\n```")


def test_links_within_the_site_carry_no_marker(settings):
    settings.SITE_URL = "https://hub.example.com"
    html = render_markdown(
        "[kb](/kb/12/) [queue](https://hub.example.com/requests/queue/) [mail](mailto:a@b.cn)"
    )
    assert "link-external" not in html


def test_protocol_relative_and_look_alike_hosts_are_marked_with_the_real_host():
    html = render_markdown("[a](//evil.example/x) [b](https://\u0430pple.com/)")
    assert "\u2197\u00a0evil.example" in html
    assert "\u2197\u00a0xn--pple-43d.com" in html
