"""Text shown as a name (titles, file names, tag and campaign names): bidirectional controls removed.

A right-to-left override (U+202E) turns `invoice\u202eexe.pdf` into what reads as `invoicefdp.exe`, and
embeddings or isolates left open in a title reorder whatever the page shows after it. A name never needs
them, so every service that saves a name passes it through `name_text` first (one place for all apps).
"""

import re

# Embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069), the LRM/RLM marks and the Arabic
# letter mark.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def strip_bidi_controls(text: str) -> str:
    """`text` without bidirectional control characters."""
    return BIDI_CONTROLS.sub("", text)


def name_text(text: str | None) -> str:
    """A name as it may be saved and shown: bidi controls removed, surrounding whitespace trimmed."""
    return strip_bidi_controls(text or "").strip()
