"""The cache file before SQLite opens it: its writer lock, its header, who prepared it.

`store.cache` opens caches with these. They import no pydantic and no sqlite-utils, so the TUI
can take the writer lock and check the file before its first frame, and open the cache as
`store.cache.Cache` right after it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import stat
import struct
import zlib
from pathlib import Path


class CacheError(Exception):
    """The cache cannot be used as asked."""


class CacheLocked(CacheError):
    """Another process holds the cache's writer lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path} is being written by another scimwatch process ({holder}). "
            "Only one process writes a cache: stop it, or open this cache read-only."
        )


_SQLITE_MAGIC = b"SQLite format 3\x00"


def header_problem(path: Path) -> str:
    """Why the file's header is not a sound SQLite database's, or "" (an empty file is fine).

    Catches garbage over page 1 and a file cut short of the size its header records, before
    SQLite would meet either deep inside a query.
    """
    with path.open("rb") as file:
        header = file.read(100)
        size = os.fstat(file.fileno()).st_size
    if not header:
        return ""
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "not a SQLite database (bad header)"
    (page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    # A checkpoint killed midway can leave page 1 ahead of the file's end; the WAL still holds
    # the rest, so a short file only means damage when no WAL is there to finish it.
    wal = path.with_name(path.name + "-wal")
    hot_wal = wal.exists() and wal.stat().st_size > 0
    short = valid_for == change_counter and pages and size < pages * page_size
    if short and not hot_wal:
        return f"truncated: {size} bytes, its header records {pages} pages of {page_size}"
    return ""


def damage_marker(path: Path) -> Path:
    """The file `Cache.damage` leaves when it finds the cache damaged."""
    return path.with_name(f"{path.name}.damaged")


def ensure_private_dir(directory: Path) -> None:
    """Create a directory (and parents) readable by the owner only."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)


def create_private_file(path: Path) -> None:
    """Create `path` as an empty 0600 file if absent; refuse symlinks and non-regular files.

    An existing file of ours with looser permissions is tightened to 0600.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CacheError(f"{path} is a symbolic link; refusing to use it") from error
        raise CacheError(f"cannot create {path}: {error.strerror}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CacheError(f"{path} is not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def take_writer_lock(path: Path) -> int:
    """Take the writer lock of the cache at `path`; the open file holding it (close to release).

    Raises:
        CacheLocked: another process holds it.
        CacheError: the lock file cannot be created (a symlink, no permission).
    """
    lock_path = _lock_path(path)
    create_private_file(lock_path)
    fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("ascii", "replace").strip() or "unknown pid"
        os.close(fd)
        raise CacheLocked(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
    return fd


def writer_holder(path: Path) -> str | None:
    """Who holds the writer lock of the cache at `path`, or None when nobody does."""
    try:
        fd = os.open(_lock_path(Path(path)), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode("ascii", "replace").strip() or "unknown pid"
    finally:
        os.close(fd)
    return None


def schema_stamp() -> int:
    """A fingerprint of this version's migrations (the source of `store.schema`).

    `Cache.open_writer` stamps a cache with it (SQLite's `user_version`) once migrated, so a
    later start can tell, without importing the migrations (sqlite-utils), that none is
    pending. 0 when the source cannot be read: no cache is taken as stamped then.
    """
    try:
        source = Path(__file__).with_name("schema.py").read_bytes()
    except OSError:
        return 0
    return zlib.crc32(source) & 0x7FFF_FFFF or 1


def prepared_by_this_version(path: Path) -> bool:
    """Whether the cache at `path` was migrated by this version and found sound since.

    False when it may need work before it is read: no file yet, an unsound header, a damage
    marker left by `Cache.damage`, or another (or no) schema stamp.
    """
    try:
        if not path.is_file() or damage_marker(path).exists() or header_problem(path):
            return False
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return False
    try:
        (stamp,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    expected = schema_stamp()
    return bool(expected) and stamp == expected
