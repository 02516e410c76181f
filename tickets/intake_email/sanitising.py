"""Mail text made fit for a ticket: HTML sanitised and turned into Markdown, and the quoted history of a
reply cut off (the ticket already holds it).

HTML goes through nh3 first (an allow-list: no script, style, head or Office XML, and their content
dropped; no event handlers; links only http, https and mailto), then markdownify turns what is left into
Markdown. Pictures are not fetched from other sites (tracking pixels): remote images are dropped and
inline ones (`cid:`) become a mention of the stored file. The ticket page renders the Markdown through
config.markdown's allow-list again, so this step is about readable text, not the last line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import nh3
from django.utils.translation import gettext as _
from markdownify import markdownify

from config.markdown import ALLOWED_TAGS

if TYPE_CHECKING:
    from tickets.intake_email.parsing import MailFile

# The tags the ticket page's Markdown keeps (config.markdown), and underline: markdownify turns them
# into Markdown; any other tag leaves its text.
_HTML_TAGS = ALLOWED_TAGS | {"u"}
# Dropped with everything inside them (nh3 keeps the text of other unknown tags).
_DROPPED_WITH_CONTENT = {"script", "style", "head", "title", "xml", "template", "noscript", "object"}
_CID_IMAGE = re.compile(r"!\[([^\]]*)\]\(cid:([^)\s]+)\)", re.IGNORECASE)
_ANY_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\u200b", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def html_to_markdown(html: str, files: Sequence[MailFile] = ()) -> str:
    """Sanitised Markdown from a mail's HTML part (script and style dropped with their content)."""
    clean = nh3.clean(
        html,
        tags=_HTML_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes={"a": {"href"}, "img": {"src", "alt"}},
        url_schemes={"http", "https", "mailto", "cid"},
        strip_comments=True,
        link_rel=None,
    )
    text = markdownify(clean, heading_style="ATX", bullets="-", escape_underscores=False)
    names = {f.content_id.lower(): f.name for f in files if f.content_id}

    def inline_image(match: re.Match) -> str:
        name = names.get(match.group(2).lower()) or match.group(1) or match.group(2)
        return "[%s]" % (_("image: %(name)s") % {"name": name})

    text = _ANY_IMAGE.sub("", _CID_IMAGE.sub(inline_image, text))
    return _tidy(text)


def plain_text_to_markdown(text: str) -> str:
    """A plain-text body as Markdown (lines kept: the renderer turns newlines into breaks)."""
    return _tidy(text)


# Where the quoted history of a reply begins, as mail programs write it (English and Chinese).
_QUOTE_HEADERS = [
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^-{2,}\s*原始邮件\s*-{2,}\s*$"),  # Foxmail, QQ Mail
    re.compile(r"^-{2,}\s*(回复的原邮件|原始郵件)\s*-{2,}\s*$"),
    re.compile(r"^On .{3,200} wrote:\s*$"),
    re.compile(r"^在\s*.{3,200}(写道|寫道)\s*[:：]\s*$"),
    re.compile(r"^\*{0,2}(From|发件人|寄件者)\s*[:：]\*{0,2}\s*\S"),  # Outlook's quoted header block
    re.compile(r"^_{10,}\s*$"),  # Outlook's separator line
]


def strip_quoted_reply(text: str) -> str:
    """The new text of a reply: up to the first line where the quoted message starts, without trailing
    `>` quotes. The whole text when nothing new is left (better too much than nothing)."""
    lines = text.split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if any(pattern.match(stripped) for pattern in _QUOTE_HEADERS):
            cut = index
            break
    kept = lines[:cut]
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    new_text = "\n".join(kept).strip()
    return new_text or text.strip()
