"""Every catalog is complete and compiled; pages render in both languages."""

import subprocess
import sys
from pathlib import Path

from django.utils import translation

ROOT = Path(__file__).resolve().parents[1]


def test_every_zh_hans_catalog_is_complete():
    result = subprocess.run([sys.executable, ".ci/po.py", "check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_catalogs_are_compiled():
    catalogs = [p for p in ROOT.rglob("zh_Hans/LC_MESSAGES/django.po") if ".venv" not in p.parts]
    assert catalogs
    for po in catalogs:
        assert po.with_suffix(".mo").exists(), f"{po} is not compiled (make test compiles it)"


def test_translation_is_active_for_navigation():
    with translation.override("zh-hans"):
        assert translation.gettext("Knowledge base") == "知识库"
    with translation.override("en"):
        assert translation.gettext("Knowledge base") == "Knowledge base"


def test_no_marked_string_is_missing_from_the_catalogs(tmp_path):
    """Extract the strings again into a copy of the tree: every one must already be translated
    (the completeness check above only sees strings that are in the catalogs)."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".venv-tools", ".data", ".git", "tests", "bench", "*.mo", "__pycache__"
        ),
    )
    extract = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "-v", "0"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert extract.returncode == 0, extract.stderr
    result = subprocess.run([sys.executable, ".ci/po.py", "check"], cwd=copy, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
