"""Helpers of the store tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Every row `sql` reads from the cache file, through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()
