"""Building UTM-tagged links: values trimmed and lower-cased, the address's own query string kept."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def normalise(value: str | None) -> str:
    """Trim and lower-case a UTM value; inner runs of white space become one space."""
    return " ".join((value or "").split()).lower()


def build_utm_url(
    *, url: str, source: str, medium: str, campaign: str, content: str = "", term: str = ""
) -> str:
    """The address with utm_* parameters set; other parameters and the fragment stay as they were.

    utm_* parameters already on the address are replaced by the new values (empty ones dropped).
    """
    parts = urlsplit(url.strip())
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in UTM_KEYS]
    values = {
        "utm_source": normalise(source),
        "utm_medium": normalise(medium),
        "utm_campaign": normalise(campaign),
        "utm_content": normalise(content),
        "utm_term": normalise(term),
    }
    kept += [(k, v) for k, v in values.items() if v]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
