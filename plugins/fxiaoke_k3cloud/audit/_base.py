"""Shared plumbing of the audit store: engine, clock, portable upserts, chunked IN lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from fxiaoke_k3cloud.audit.engine import display_url, make_engine

T = TypeVar("T")

#: Values per ``IN (...)`` list: far below SQLite's 32,766 bound parameters, cheap for Postgres plans.
IN_CHUNK = 500


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def unique_strings(values: Iterable[Any]) -> list[str]:
    """Distinct, non-empty string forms of ``values``, first-seen order kept."""
    return list(dict.fromkeys(str(v) for v in values if v is not None and str(v) != ""))


class StoreBase:
    """Engine lifecycle and dialect helpers; holds no data logic."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None, **engine_kwargs: Any) -> None:
        """Store the settings; the engine is created on first use (no I/O here).

        :param url: SQLAlchemy URL, ``postgresql+psycopg2://…`` or ``sqlite:///path``.
        :param clock: returns the current aware UTC time; tests pass a fake one.
        """
        self._url = url
        self._clock = clock or utcnow
        self._engine_kwargs = engine_kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_url(self._url)!r})"

    @property
    def url(self) -> str:
        """The URL with the password hidden."""
        return display_url(self._url)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self._url, **self._engine_kwargs)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        """Close pooled connections (call when a task is done with the store)."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    def _now(self) -> datetime:
        return self._clock()

    @staticmethod
    def _insert(conn: Connection, table: sa.Table) -> Any:
        """The dialect's INSERT construct, which carries ``on_conflict_do_update`` on both dialects."""
        if conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
