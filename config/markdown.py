"""Markdown to sanitised HTML: an allow-list of tags and attributes, links limited to safe schemes.

No class or style attribute survives (with Bootstrap loaded, `class="position-fixed top-0 w-100 h-100"`
lets a ticket description cover the agent's page with a fake sign-in form), except a fenced code
block's `language-*`. A link to another site is followed by a visible marker naming its host.
"""

import html
import re
from urllib.parse import urlsplit

import markdown as md
import nh3
from django.conf import settings
from django.http.request import validate_host

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]


# The only class kept: the language of a fenced code block (```sql -> class="language-sql").
CODE_LANGUAGE = re.compile(r"language-[A-Za-z0-9_+-]{1,30}")
# nh3's output is serialised by html5ever: attribute values double-quoted (a quote inside escaped), no
# nested anchors, and "<" in text escaped, so the first "</a>" after an opening tag closes it.
ANCHOR = re.compile(r'<a((?:\s+[\w-]+(?:="[^"]*")?)*)\s*>(.*?)</a>', re.DOTALL)
HREF = re.compile(r'\shref="([^"]*)"')


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        kept = [name for name in value.split() if tag == "code" and CODE_LANGUAGE.fullmatch(name)]
        return " ".join(kept) or None
    return value


def _own_hosts() -> list[str]:
    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    site = urlsplit(getattr(settings, "SITE_URL", "")).hostname
    return [*hosts, site] if site else hosts


def external_host(href: str) -> str | None:
    """The host of a link to another site (shown as the browser would reach it), or None."""
    parts = urlsplit(href.strip())
    if parts.scheme not in ("", "http", "https") or not parts.netloc:
        return None
    host = parts.hostname or ""
    if host and validate_host(host, _own_hosts()):
        return None
    try:
        return host.encode("idna").decode("ascii") or parts.netloc
    except UnicodeError:
        return host or parts.netloc


def _mark_external(match: re.Match) -> str:
    href = HREF.search(match.group(1))
    host = external_host(html.unescape(href.group(1))) if href else None
    if host is None:
        return match.group(0)
    return f'{match.group(0)} <small class="link-external">\u2197\u00a0{html.escape(host)}</small>'


def render_markdown(text: str) -> str:
    """Render Markdown and keep only the allow-listed HTML (no script, no javascript: links, no handlers,
    no classes); links to other sites get a visible marker with their host."""
    rendered = md.markdown(text or "", extensions=EXTENSIONS, output_format="html")
    clean = nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return ANCHOR.sub(_mark_external, clean)
