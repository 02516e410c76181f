"""Gettext catalog helper for developers and CI.

python .ci/po.py check                      every zh_Hans catalog: no empty or fuzzy entry (exit 1 if any)
python .ci/po.py missing FILE.po            list the msgids still without a translation
python .ci/po.py fill FILE.po MAP.json      fill empty msgstr from {"msgid": "译文", ...}
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = re.compile(r"\n\n(?=(?:#|msgctxt|msgid))")


def _unquote(lines: list[str]) -> str:
    return "".join(json.loads(line) for line in lines)


def _field(block: list[str], name: str) -> tuple[int, int] | None:
    """The [start, end) line range of a field (e.g. msgid) with its continuation lines."""
    for i, line in enumerate(block):
        if line.startswith(name + " "):
            j = i + 1
            while j < len(block) and block[j].startswith('"'):
                j += 1
            return i, j
    return None


def entries(text: str) -> list[list[str]]:
    return [chunk.split("\n") for chunk in ENTRY.split(text.strip("\n"))]


def _value(block: list[str], name: str) -> str | None:
    span = _field(block, name)
    if span is None:
        return None
    start, end = span
    return _unquote([block[start][len(name) + 1 :]] + block[start + 1 : end])


def problems(path: Path) -> list[str]:
    found = []
    for block in entries(path.read_text(encoding="utf-8"))[1:]:
        if all(line.startswith("#~") or not line for line in block):
            continue
        msgid = _value(block, "msgid")
        if any(line.startswith("#,") and "fuzzy" in line for line in block):
            found.append(f"{path}: fuzzy: {msgid!r}")
        strs = (
            [_value(block, "msgstr")]
            if _field(block, "msgstr")
            else [_value(block, f"msgstr[{n}]") for n in range(2) if _field(block, f"msgstr[{n}]")]
        )
        if any(not s for s in strs):
            found.append(f"{path}: untranslated: {msgid!r}")
    return found


def catalogs() -> list[Path]:
    skip = {".venv", ".data", "node_modules"}
    return sorted(p for p in ROOT.rglob("zh_Hans/LC_MESSAGES/django.po") if not skip & set(p.parts))


def fill(path: Path, mapping: dict[str, str]) -> int:
    blocks = entries(path.read_text(encoding="utf-8"))
    changed = 0
    for block in blocks[1:]:
        msgid = _value(block, "msgid")
        if msgid not in mapping:
            continue
        span = _field(block, "msgstr")
        if span is None:
            for n in range(2):
                s = _field(block, f"msgstr[{n}]")
                if s and not _value(block, f"msgstr[{n}]"):
                    # a plural maps to [singular, plural] (or one text for both forms); Chinese has one
                    # form (msgstr[0] only), which is the plural's: it carries the count
                    text = mapping[msgid]
                    if isinstance(text, list):
                        text = text[-1] if not _field(block, "msgstr[1]") else text[min(n, len(text) - 1)]
                    block[s[0] : s[1]] = [f"msgstr[{n}] " + json.dumps(text, ensure_ascii=False)]
                    changed += 1
            continue
        if _value(block, "msgstr"):
            continue
        block[span[0] : span[1]] = ["msgstr " + json.dumps(mapping[msgid], ensure_ascii=False)]
        for i, line in enumerate(block):
            if line.startswith("#,") and "fuzzy" in line:
                flags = [f.strip() for f in line[2:].split(",") if f.strip() != "fuzzy"]
                block[i] = "#, " + ", ".join(flags) if flags else ""
        changed += 1
    path.write_text(
        "\n\n".join("\n".join(line for line in b if line != "" or True) for b in blocks) + "\n",
        encoding="utf-8",
    )
    return changed


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        found = [p for path in catalogs() for p in problems(path)]
        print("\n".join(found) or f"{len(catalogs())} catalogs complete")
        return 1 if found else 0
    if argv[:1] == ["missing"]:
        for p in problems(Path(argv[1])):
            print(p)
        return 0
    if argv[:1] == ["fill"]:
        mapping = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        print(f"filled {fill(Path(argv[1]), mapping)} entries")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
