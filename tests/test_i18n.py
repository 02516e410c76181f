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
