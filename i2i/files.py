"""Writing files so that a kill never leaves half of one under its final name: temporary
names beside the target, the permissions a plain ``open`` / ``mkdir`` would give, atomic renames.

Every writer of i2i (images, checkpoints, model folders, videos, frame folders, reports, the run
log) goes through here. Temporary files are named ``.NAME.<random>.tmp`` (:func:`temp_prefix`), so
the next run can tell its own leftovers from other files. Knows nothing of images or models.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def temp_prefix(name: str) -> str:
    """The prefix of the temporary files of writes to ``name``: ``.name.`` with the name cut to 200
    bytes, so a legal 255-byte name still leaves room for the random part and ``.tmp``."""
    short = name.encode()[:200].decode(errors="ignore")
    return f".{short}."


def temp_file(dst: Path) -> Path:
    """A new empty temporary file beside ``dst`` (its folder made), named for ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dst.name), suffix=".tmp", dir=dst.parent)
    os.close(fd)
    return Path(tmp)


def temp_folder(dst: Path) -> Path:
    """A new empty temporary folder beside ``dst`` (its parent made), named for ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(dst.name), suffix=".tmp", dir=dst.parent))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename. A full disk
    raises an ``OSError`` naming ``path`` (the failing write itself names no file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish(Path(tmp), path)  # mkstemp creates 0600: normal permissions, then the rename
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


def normal_permissions(folder: Path) -> None:
    """Give ``folder`` and the files in it the permissions a plain ``mkdir`` / ``open`` would
    (``tempfile`` makes them private: 0700 and 0600)."""
    os.chmod(folder, 0o777 & ~_UMASK)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~_UMASK)
