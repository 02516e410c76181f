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
