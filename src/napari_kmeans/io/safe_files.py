"""Files read only when they are regular files, and written whole or not at all.

Every output (image, JSON, model, Zarr store) is first written under a hidden temporary name
beside its destination (``.<stem>.<token>.partial<suffix>``, same folder, so the final rename
never crosses file systems) and renamed into place only when complete. An error, Ctrl-C or
SIGTERM while writing removes the temporary file and leaves the destination as it was;
several files staged together in :class:`Staged` appear together or not at all.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_bytes(folder / "a.txt", b"one")
>>> write_bytes(folder / "a.txt", b"two", overwrite=False)
Traceback (most recent call last):
...
FileExistsError: [Errno 17] File exists: ...
>>> read_regular_file(folder / "a.txt")
b'one'
>>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
['a.txt']
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Staged",
    "check_regular_file",
    "read_regular_file",
    "staged",
    "write_bytes",
    "write_text",
]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """Read ``path``, refusing anything but a regular file before opening it.

    A FIFO would block forever and a device such as ``/dev/zero`` never ends, so they are
    refused from ``os.stat`` (symbolic links are followed) without being opened.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    bytes
        The whole content.

    Raises
    ------
    OSError
        ``FileNotFoundError``, ``IsADirectoryError``, or an ``OSError`` whose ``strerror``
        says what the path is ("a FIFO (named pipe), not a regular file"); a symbolic-link
        loop or a permission problem as the system reports it.

    Examples
    --------
    >>> read_regular_file("/dev/zero")
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] a character device, not a regular file: '/dev/zero'
    """
    with open_regular_file(path) as file:
        return file.read()


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file.

    The path is checked with ``os.stat`` before it is opened (a device is never opened),
    opened without blocking (a FIFO swapped in meanwhile cannot hang) and checked again on
    the open file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to open.

    Returns
    -------
    BinaryIO
        The open file, to close (a context manager).

    Raises
    ------
    OSError
        As :func:`read_regular_file`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as named:
    ...     _ = named.write(b"abc"); named.flush()
    ...     with open_regular_file(named.name) as file:
    ...         file.read()
    b'abc'
    """
    check_regular_file(path)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _check_mode(os.fstat(descriptor).st_mode, path)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def check_regular_file(path: str | os.PathLike[str]) -> None:
    """Raise the ``OSError`` of :func:`read_regular_file` unless ``path`` is a regular file.

    Parameters
    ----------
    path : str or os.PathLike
        The path to check (symbolic links are followed).

    Raises
    ------
    OSError
        As :func:`read_regular_file`.

    Examples
    --------
    >>> check_regular_file("/")
    Traceback (most recent call last):
    ...
    IsADirectoryError: [Errno 21] a directory, not a regular file: '/'
    """
    _check_mode(os.stat(path).st_mode, path)


def _check_mode(mode: int, path) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        error = IsADirectoryError if stat.S_ISDIR(mode) else OSError
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise error(code, f"{kind}, not a regular file", str(path))


class Staged:
    """Outputs written under temporary names and published together on :meth:`commit`.

    Use as a context manager: leaving the block normally publishes every staged output,
    leaving it by an exception (Ctrl-C included) deletes them and publishes nothing.

    Parameters
    ----------
    overwrite : bool
        Whether a destination that already exists may be replaced. When False, the commit
        refuses (``FileExistsError`` naming it) before publishing anything.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with Staged(overwrite=False) as outputs:
    ...     outputs.path(folder / "a.txt").write_text("a")
    ...     outputs.path(folder / "b.txt").write_text("b")
    1
    1
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt', 'b.txt']
    """

    def __init__(self, *, overwrite: bool = True):
        self.overwrite = overwrite
        self._staged: list[tuple[Path, Path]] = []

    def path(self, destination: str | os.PathLike[str]) -> Path:
        """Return a fresh temporary path beside ``destination`` (same suffix), to write into.

        Parameters
        ----------
        destination : str or os.PathLike
            Where the output goes on :meth:`commit`.

        Returns
        -------
        pathlib.Path
            A hidden temporary name in the same folder.

        Examples
        --------
        >>> Staged().path("out/labels.tif").name  # doctest: +ELLIPSIS
        '.labels....partial.tif'
        """
        destination = Path(destination)
        temporary = _sibling(destination, "partial")
        self._staged.append((temporary, destination))
        return temporary

    def commit(self) -> None:
        """Rename every staged output into place, all or none (Ctrl-C and SIGTERM held off).

        Every destination is checked before the first rename; an existing one is moved
        aside and deleted only once every output is in place, so a rename that fails
        halfway puts back what was there. Temporary paths that were never written (a
        writer that refused) are skipped.

        Raises
        ------
        FileExistsError
            With ``overwrite=False``, when a destination exists (nothing is published).
        IsADirectoryError
            When a folder stands where a file goes (nothing is published).
        NotADirectoryError
            When something other than a folder stands where a folder goes.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> outputs = Staged()
        >>> _ = outputs.path(target).write_text("a")
        >>> outputs.commit()
        >>> target.read_text()
        'a'
        """
        written = [(tmp, dest) for tmp, dest in self._staged if os.path.lexists(tmp)]
        with _interrupts_deferred():
            for temporary, destination in written:
                _check_destination(temporary, destination, self.overwrite)
            published: list[tuple[Path, Path | None]] = []  # destination, what it replaced
            try:
                for temporary, destination in written:
                    published.append((destination, _publish(temporary, destination)))
            except BaseException:
                for destination, replaced in reversed(published):
                    _unpublish(destination, replaced)
                raise
            for _, replaced in published:
                if replaced is not None:
                    _remove(replaced)
            self._staged.clear()

    def discard(self) -> None:
        """Delete every staged output that was written.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> outputs = Staged()
        >>> _ = outputs.path(folder / "a.txt").write_text("a")
        >>> outputs.discard()
        >>> list(folder.iterdir())
        []
        """
        for temporary, _ in self._staged:
            _remove(temporary)
        self._staged.clear()

    def __enter__(self) -> Staged:
        """Start staging."""
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """Commit when the block ended normally, else discard."""
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


@contextmanager
def staged(destination: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``destination`` into, renamed into place on success.

    Parameters
    ----------
    destination : str or os.PathLike
        The output's final path.
    overwrite : bool
        Whether an existing ``destination`` may be replaced (False: ``FileExistsError``).

    Yields
    ------
    pathlib.Path
        A hidden temporary path in the same folder; deleted if the block raises.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with staged(target) as temporary:
    ...     _ = temporary.write_text("done")
    >>> target.read_text()
    'done'
    """
    with Staged(overwrite=overwrite) as outputs:
        yield outputs.path(destination)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    data : bytes
        The content.
    overwrite : bool
        Whether an existing file at ``path`` may be replaced (False: ``FileExistsError``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
    >>> write_bytes(target, b"ab")
    >>> target.read_bytes()
    b'ab'
    """
    with staged(path, overwrite=overwrite) as temporary:
        with open(temporary, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    text : str
        The content.
    overwrite : bool
        Whether an existing file at ``path`` may be replaced (False: ``FileExistsError``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_text(target, "é")
    >>> len(target.read_bytes()), target.read_text(encoding="utf-8")
    (2, 'é')
    """
    write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _sibling(destination: Path, kind: str) -> Path:
    """Return a fresh hidden name beside ``destination``: ``.<stem>.<token>.<kind><suffix>``.

    The stem is shortened so that the name stays within 255 bytes, the usual limit of a
    file name, whenever the destination's own name does.
    """
    token, suffix = secrets.token_hex(4), destination.suffix
    stem = destination.stem
    spare = 255 - len(os.fsencode(f"..{token}.{kind}{suffix}"))
    while len(os.fsencode(stem)) > spare:
        stem = stem[:-1]
    return destination.with_name(f".{stem}.{token}.{kind}{suffix}")


def _check_destination(temporary: Path, destination: Path, overwrite: bool) -> None:
    if not os.path.lexists(destination):
        return
    if not overwrite:
        raise FileExistsError(errno.EEXIST, "File exists", str(destination))
    folder = destination.is_dir() and not destination.is_symlink()
    if folder and not temporary.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder stands where a file goes", str(destination))
    if temporary.is_dir() and not folder:
        raise NotADirectoryError(
            errno.ENOTDIR, "something other than a folder stands where one goes", str(destination)
        )


def _publish(temporary: Path, destination: Path) -> Path | None:
    """Rename ``temporary`` to ``destination``; return where the old one was moved, if any.

    A destination that appeared since it was checked is never clobbered: the hard link
    (files) or the rename (folders) of a new destination fails if it exists.
    """
    if not os.path.lexists(destination):
        if temporary.is_dir():
            os.rename(temporary, destination)
            return None
        try:
            os.link(temporary, destination)
        except FileExistsError:
            raise
        except OSError:  # file systems without hard links
            if os.path.lexists(destination):
                raise FileExistsError(errno.EEXIST, "File exists", str(destination)) from None
            os.rename(temporary, destination)
            return None
        os.unlink(temporary)
        return None
    replaced = _sibling(destination, "replaced")
    if temporary.is_dir():
        os.rename(destination, replaced)
        try:
            os.rename(temporary, destination)
        except BaseException:
            os.rename(replaced, destination)
            raise
        return replaced
    try:  # a second name for the old file: the destination is never missing
        os.link(destination, replaced, follow_symlinks=False)
    except OSError:  # file systems without hard links
        os.rename(destination, replaced)
    try:
        os.replace(temporary, destination)
    except BaseException:
        if os.path.lexists(destination):
            os.unlink(replaced)
        else:
            os.rename(replaced, destination)
        raise
    return replaced


def _unpublish(destination: Path, replaced: Path | None) -> None:
    """Undo :func:`_publish`: remove the new output and put back what it replaced."""
    if replaced is not None and not replaced.is_dir():
        os.replace(replaced, destination)
        return
    _remove(destination)
    if replaced is not None:
        os.rename(replaced, destination)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (main thread only), then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum))
        for signum in held
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for pending in dict.fromkeys(received):
        signal.raise_signal(pending)  # whatever the restored handler does with it
