"""CSV export of what a table shows, filtered (k9s ctrl+s): a new private file, never a symlink."""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text

from dashboard.widgets.safe_text import clean

EXPORT_CELL_LIMIT = 32_000
"""Longest cell written (spreadsheets cap cells near 32k characters)."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with these runs as a formula in a spreadsheet (CSV injection)."""


class ExportError(Exception):
    """The export file could not be written; the message says why."""


def csv_cell(value: object) -> str:
    """A cell as CSV text: cleaned of controls, numbers as they are, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    text = clean(value.plain if isinstance(value, Text) else value, EXPORT_CELL_LIMIT)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_path(directory: Path, stem: str, now: datetime) -> Path:
    """`<directory>/scimwatch-<stem>-<UTC time>.csv`."""
    return directory / f"scimwatch-{stem}-{now.astimezone(UTC):%Y%m%d-%H%M%S}.csv"


def _open_new(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for attempt in range(1, 100):
        candidate = path if attempt == 1 else path.with_stem(f"{path.stem}-{attempt}")
        try:
            return os.open(candidate, flags, 0o600), candidate
        except FileExistsError:
            if candidate.is_symlink():
                raise ExportError(f"{candidate} is a symbolic link; refusing to write") from None
            continue
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise ExportError(f"{candidate} is a symbolic link; refusing to write") from None
            raise ExportError(f"cannot write {candidate}: {error.strerror}") from error
    raise ExportError(f"too many exports named like {path}")


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> tuple[Path, int]:
    """Write a new 0600 CSV file at `path` (or `path-N` if taken): where, and how many rows.

    Raises:
        ExportError: the directory is a symlink, unwritable, or the file cannot be created.
    """
    if path.parent.is_symlink():
        raise ExportError(f"{path.parent} is a symbolic link; refusing to write there")
    fd, path = _open_new(path)
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])
            count += 1
    return path, count
