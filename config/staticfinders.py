"""Serve front-end files that ship inside Python packages under stable static paths (no copies in git)."""

from importlib.util import find_spec
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files import File
from django.core.files.storage import FileSystemStorage


def _package_file(package: str, *parts: str) -> Path | None:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


# static path -> (package, path inside the package)
PACKAGED_FILES = {
    "vendor/plotly.min.js": ("plotly", "package_data", "plotly.min.js"),
}


class PackagedFilesFinder(BaseFinder):
    """Find `vendor/...` files inside installed packages (e.g. plotly.js from the plotly wheel)."""

    def check(self, **kwargs) -> list:
        return []

    def _files(self) -> dict[str, Path]:
        found = {}
        for static_path, (package, *parts) in PACKAGED_FILES.items():
            path = _package_file(package, *parts)
            if path is not None:
                found[static_path] = path
        return found

    def find(self, path: str, find_all: bool = False, **kwargs) -> str | list[str]:
        match = self._files().get(path)
        if match is None:
            return [] if find_all else None
        return [str(match)] if find_all else str(match)

    def list(self, ignore_patterns: list[str] | None):
        for static_path, path in self._files().items():
            yield static_path, _SingleFileStorage(path)


class _SingleFileStorage(FileSystemStorage):
    """A storage that answers every name with one packaged file (collectstatic copies it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(location=str(path.parent))
        self._file = path
        self.prefix = None

    def path(self, name: str) -> str:
        return str(self._file)

    def open(self, name: str, mode: str = "rb") -> File:
        return File(open(self._file, mode))  # noqa: SIM115 - collectstatic closes it
