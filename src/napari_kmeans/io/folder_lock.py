"""One run at a time per output folder: a lock file that the system releases with its process.

Two runs writing the same outputs would interleave their files (one image's JSON from one
run, its labels from the other). :func:`folder_lock` takes an exclusive lock on the file
``.napari-kmeans.lock`` in the folder (``flock`` on POSIX, ``msvcrt.locking`` on Windows),
writes the process id into it and removes it at the end. The system drops the lock when the
process ends in any way, SIGKILL included, so a killed run leaves at most an unlocked file
that the next run takes over.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with folder_lock(folder):
...     sorted(p.name for p in folder.iterdir())
['.napari-kmeans.lock']
>>> list(folder.iterdir())
[]
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

__all__ = ["LOCK_NAME", "FolderInUse", "folder_lock"]

LOCK_NAME = ".napari-kmeans.lock"


class FolderInUse(Exception):
    """Another live process holds the folder's lock.

    Attributes
    ----------
    folder : pathlib.Path
        The folder.
    pid : int or None
        The holder's process id, when it could be read.

    Examples
    --------
    >>> print(FolderInUse(Path("out"), 42))
    out: another napari-kmeans run (process 42) is writing in this folder
    """

    def __init__(self, folder: Path, pid: int | None):
        self.folder, self.pid = folder, pid
        holder = "" if pid is None else f" (process {pid})"
        super().__init__(f"{folder}: another napari-kmeans run{holder} is writing in this folder")


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        raise
    return True


def _holder(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


@contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of ``folder`` for the block; remove the lock file at its end.

    Parameters
    ----------
    folder : str or os.PathLike
        An existing folder.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    FolderInUse
        When another process holds the lock.
    OSError
        When the lock file cannot be created (a read-only folder) or is not a regular file
        (a symbolic link planted there is never followed).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with folder_lock(folder) as lock:
    ...     lock.read_text().strip() == str(os.getpid())
    True
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:
        fd = os.open(path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "the lock file is not a regular file", str(path))
            if not _try_lock(fd):
                raise FolderInUse(folder, _holder(fd))
            try:  # the holder may have removed the file between our open and our lock
                current = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        try:
            os.unlink(path)  # still locked: a run that opened it meanwhile retries
        except OSError:
            pass
        os.close(fd)
