"""Writing files so that a kill never leaves half of one under its final name: temporary
names beside the target, the permissions a plain ``open`` / ``mkdir`` would give, atomic renames.

Every writer of i2i (images, checkpoints, model folders, videos, frame folders, reports, the run
log) goes through here. Temporary files are named ``.NAME.<random>.tmp`` (:func:`temp_prefix`), so
the next run can tell its own leftovers from other files, and their writer holds an advisory lock
(``flock``) on them while it writes: a leftover is removed only when no live process holds it
(:func:`remove_leftover`), so a second process never deletes a first one's work in progress.
Knows nothing of images or models.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def temp_prefix(name: str) -> str:
    """The prefix of the temporary files of writes to ``name``: ``.name.`` with the name cut to 200
    bytes, so a legal 255-byte name still leaves room for the random part and ``.tmp``."""
    short = name.encode()[:200].decode(errors="ignore")
    return f".{short}."


def temp_file(dst: Path) -> Path:
    """A new empty temporary file beside ``dst`` (its folder made), named for ``dst``; hold it with
    :func:`held_temp` while writing it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dst.name), suffix=".tmp", dir=dst.parent)
    os.close(fd)
    return Path(tmp)


def temp_folder(dst: Path) -> Path:
    """A new empty temporary folder beside ``dst`` (its parent made), named for ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(dst.name), suffix=".tmp", dir=dst.parent))


def _open_for_lock(path: Path) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if path.is_dir() and not path.is_symlink() else 0)
    return os.open(path, flags)


@contextlib.contextmanager
def held_temp(dst: Path, *, folder: bool = False) -> Iterator[Path]:
    """A new temporary file (or folder) for ``dst``, locked by this process while the block runs
    (``flock``; released when the block ends, however it ends). The caller renames or removes it."""
    tmp = temp_folder(dst) if folder else temp_file(dst)
    fd = _open_for_lock(tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` itself (no lock file is left behind) while the
    block runs: processes that read, change and rewrite a file in it take turns."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_leftover(tmp: Path) -> bool:
    """Remove ``tmp`` (a temporary file or folder of an interrupted write) unless a live process
    holds it (:func:`held_temp`, :func:`atomic_write_bytes`); True when removed. A symbolic link is
    removed, never followed."""
    if tmp.is_symlink():
        tmp.unlink(missing_ok=True)
        return True
    try:
        fd = _open_for_lock(tmp)
    except OSError:
        return False  # gone meanwhile, or not ours to open
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer: its work in progress
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename. A full disk
    raises an ``OSError`` naming ``path`` (the failing write itself names no file)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():  # a rename onto it would fail naming the temporary file
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live write: other processes' cleanups leave it alone
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            publish(Path(tmp), path)  # mkstemp creates 0600: normal permissions, then the rename (still held)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None:  # a full disk fails the write itself, which names no file
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish(tmp: Path, path: Path) -> None:
    """Give the complete temporary file ``tmp`` (``tempfile`` makes it 0600) a plain ``open``'s
    permissions and rename it to ``path``."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def publish_folder(tmp: Path, folder: Path) -> None:
    """Give the complete temporary folder ``tmp`` plain permissions and rename it to ``folder``; an
    existing ``folder`` (an earlier output) is moved aside first and removed after, so a kill leaves
    the old folder or the new one under the final name, never half of one."""
    normal_permissions(tmp)
    old = None
    if folder.exists() or folder.is_symlink():
        old = folder.with_name(f"{temp_prefix(folder.name)}old.tmp")
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def normal_permissions(folder: Path) -> None:
    """Give ``folder`` and the files in it the permissions a plain ``mkdir`` / ``open`` would
    (``tempfile`` makes them private: 0700 and 0600)."""
    os.chmod(folder, 0o777 & ~_UMASK)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~_UMASK)
