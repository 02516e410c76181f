"""Reading an RFC 822 message as people's mail programs really write it: encoded words (RFC 2047) and raw
8-bit headers, RFC 2231 parameters, GB2312/GBK/GB18030, Big5 and UTF-8 bodies, and charsets that lie.

Works on the `compat32` policy: it keeps undecodable bytes (as surrogates) where the default policy would
replace them, so the charset can be chosen here, not guessed by the library.
"""

from __future__ import annotations

import codecs
import re
from email.header import Header, decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value

# GB2312 and GBK are subsets of GB18030: mail labelled with either often holds characters only the larger
# set has (Foxmail, older Outlook), so all three decode as GB18030. Big5 likewise as its HKSCS superset.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",  # Outlook's "Latin-1" is Windows-1252 (curly quotes in 0x80-0x9f)
    "us-ascii": "utf-8",  # mislabelled 8-bit text is far more often UTF-8 than anything else
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
}
# Tried in order when the declared charset fails or is unknown.
_FALLBACKS = ("utf-8", "gb18030", "big5hkscs")


def charset_of(label: str | None) -> str | None:
    """The codec to decode a declared charset with (None when Python knows no such codec)."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset when it decodes them cleanly, else UTF-8, GB18030, Big5, and
    as a last resort the declared (or UTF-8) charset with replacement characters."""
    codec = charset_of(declared)
    for candidate in (codec, *_FALLBACKS):
        if candidate is None:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec or "utf-8", errors="replace")


def _raw_bytes(text: str) -> bytes:
    """The original bytes of a header string that compat32 read with surrogate escapes."""
    return text.encode("ascii", errors="surrogateescape")


_WHITESPACE = re.compile(r"\s+")
_ENCODED_WORD_GAP = re.compile(r"(\?=)\s+(=\?)")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_value(value: object) -> str:
    """A header's text: RFC 2047 encoded words in any charset, raw 8-bit bytes (UTF-8 or GBK, as some
    clients send), folded lines joined."""
    if value is None:
        return ""
    if isinstance(value, Header):  # compat32 wraps a header with raw 8-bit bytes as "unknown-8bit"
        return "".join(
            decode_bytes(chunk, None) if isinstance(chunk, bytes) else chunk
            for chunk, _charset in decode_header(value)
        ).strip()
    text = str(value)
    # Some mailers put encoded words inside quotes or split a word's bytes across two encoded words;
    # decode_header joins adjacent words of one charset before decoding, which repairs the second.
    text = _ENCODED_WORD_GAP.sub(r"\1\2", text.replace("\r", "").replace("\n", ""))
    if not _ENCODED_WORD.search(text):
        return _plain_header(text).strip()
    try:
        parts = decode_header(text)
    except Exception:  # noqa: BLE001  a malformed encoded word: show the header as it came
        return _plain_header(text).strip()
    pieces = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            pieces.append(_plain_header(chunk))
        else:
            pieces.append(decode_bytes(chunk, charset) if charset else _plain_header(_from_latin1(chunk)))
    return "".join(pieces).strip()


def _from_latin1(chunk: bytes) -> str:
    return chunk.decode("ascii", errors="surrogateescape")


def _plain_header(text: str) -> str:
    """An unencoded header: 8-bit bytes (surrogates here) decoded as UTF-8, else GB18030, else Big5."""
    try:
        raw = _raw_bytes(text)
    except UnicodeEncodeError:  # already real text
        return _WHITESPACE.sub(" ", text)
    return _WHITESPACE.sub(" ", decode_bytes(raw))


def part_filename(part: Message) -> str:
    """An attachment's file name: RFC 2231 (`filename*=gb2312''%C4%E3`), RFC 2047 inside quotes
    (`filename="=?UTF-8?B?...?="`, Outlook and Foxmail), raw 8-bit, or the `name` of Content-Type."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = part.get_param(param, None, header)
        if raw is None:
            continue
        if isinstance(raw, tuple):  # RFC 2231: (charset, language, %-decoded bytes as latin-1 text)
            charset, _language, encoded = raw
            data = encoded.encode("latin-1", errors="surrogateescape") if encoded else b""
            name = decode_bytes(data, charset) if charset else collapse_rfc2231_value(raw)
        else:
            name = decode_header_value(raw)
        name = name.strip()
        if name:
            return name
    return ""


def part_text(part: Message) -> str:
    """A text part's content as text, whatever its transfer encoding and charset."""
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    return decode_bytes(payload, part.get_content_charset())
