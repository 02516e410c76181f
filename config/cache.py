"""A Redis cache that degrades to "no cache" while Redis is down, so pages keep serving."""

import logging
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ResilientRedisCache(RedisCache):
    """Reads miss and writes are skipped when Redis cannot be reached; each failure is logged."""

    def _fail(self, operation: str, exc: Exception) -> None:
        log.warning("cache %s skipped: redis unavailable (%s)", operation, exc)

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            self._fail("get", exc)
            return default

    def get_many(self, keys: list[str], version: int | None = None) -> dict:
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            self._fail("get_many", exc)
            return {}

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout=timeout, version=version)
        except RedisError as exc:
            self._fail("set", exc)

    def set_many(self, data: dict, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        try:
            return super().set_many(data, timeout=timeout, version=version)
        except RedisError as exc:
            self._fail("set_many", exc)
            return list(data)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout=timeout, version=version)
        except RedisError as exc:
            self._fail("add", exc)
            return False

    def delete(self, key: str, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except RedisError as exc:
            self._fail("delete", exc)
            return False

    def delete_many(self, keys: list[str], version: int | None = None) -> None:
        try:
            super().delete_many(keys, version)
        except RedisError as exc:
            self._fail("delete_many", exc)

    def has_key(self, key: str, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            self._fail("has_key", exc)
            return False

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            self._fail("incr", exc)
            raise ValueError(f"Key '{key}' not found (cache unavailable)") from exc

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout=timeout, version=version)
        except RedisError as exc:
            self._fail("touch", exc)
            return False

    def clear(self) -> None:
        try:
            super().clear()
        except RedisError as exc:
            self._fail("clear", exc)
