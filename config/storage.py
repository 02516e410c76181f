"""Static files as deployed: compressed (Brotli and gzip), with hashed names from the manifest that
`collectstatic` writes.

Brotli at its best quality is slow (about 15 s for plotly.min.js alone) and whitenoise compresses each
file twice, under its plain and its hashed name. The compressed bytes are kept in a cache folder keyed
by the content's hash, so a file is compressed once per content, ever: the second copy in a run and every
later `collectstatic` reuse it. Source maps are not compressed (only developer tools fetch them)."""

import hashlib
import os
import tempfile
from functools import partial
from pathlib import Path

import brotli
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage

SKIP_COMPRESS = ("map",)
BROTLI_BEST_MAX_BYTES = 256 * 1024


class CachingCompressor(Compressor):
    def __init__(self, *args, cache_dir: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def _cached(self, data: bytes, suffix: str, compress) -> bytes:
        path = self.cache_dir / f"{hashlib.sha256(data).hexdigest()}{suffix}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        compressed = compress(data)
        # written whole or not at all: another thread or process may read the same key at any time
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir)
        with os.fdopen(fd, "wb") as file:
            file.write(compressed)
        os.replace(tmp, path)
        return compressed

    def compress_brotli(self, data: bytes) -> bytes:
        quality = 11 if len(data) <= BROTLI_BEST_MAX_BYTES else 9
        return self._cached(data, f".q{quality}.br", partial(brotli.compress, quality=quality))

    def compress_gzip(self, data: bytes) -> bytes:
        return self._cached(data, ".gz", Compressor.compress_gzip)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Compresses through the cache, and says what to do when the static files were never collected
    (instead of a bare "missing manifest entry" on every page)."""

    def create_compressor(self, **kwargs) -> Compressor:
        kwargs["extensions"] = [
            *(kwargs.get("extensions") or Compressor.SKIP_COMPRESS_EXTENSIONS),
            *SKIP_COMPRESS,
        ]
        return CachingCompressor(cache_dir=Path(settings.STATIC_COMPRESS_CACHE), **kwargs)

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            raise ImproperlyConfigured(
                f"Static files have not been collected into {self.location}: run `python manage.py "
                "collectstatic` (`make run` does), or set DJANGO_DEBUG=true to serve them from their "
                "source folders while developing."
            )
        return super().stored_name(name)
