#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def _dotenv_sets(name: str) -> bool:
    dotenv = Path(__file__).resolve().parent / ".env"
    return dotenv.exists() and any(
        line.strip().startswith(f"{name}=") for line in dotenv.read_text(encoding="utf-8").splitlines()
    )


def main():
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["runserver"] and not _dotenv_sets("DJANGO_DEBUG"):
        # A developer's first runserver: debug mode serves static files from their source folders
        # (production settings would need `collectstatic` first). DJANGO_DEBUG=false still says otherwise.
        os.environ.setdefault("DJANGO_DEBUG", "true")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
