r"""What an image file's header says about its pixels, read before anything is decoded.

:func:`header_pixels` gives the number of pixels a PNG, JPEG, TIFF (every page, classic and
BigTIFF), BMP, WebP or PBM/PGM/PPM will decode to, so that a file claiming a huge size is
refused before it costs memory; :func:`tiff_pages` gives the few TIFF tags that decide how a
TIFF must be decoded. Truncated or inconsistent headers give what could be read: the decoder
reports the damage.

Examples
--------
>>> import struct, zlib
>>> ihdr = struct.pack(">IIBBBBB", 20000, 30000, 16, 2, 0, 0, 0)
>>> png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
>>> header_pixels(png)
600000000
"""

from __future__ import annotations

import os
import struct

__all__ = ["TIFF_MAGICS", "FileView", "TiffPage", "header_pixels", "tiff_pages"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF
_PNM_HEADER_BYTES = 1024  # magic, comments, width and height fit in this
# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# TIFF tags read: name -> tag number
_TAGS = {
    256: "width",
    257: "height",
    258: "bits_per_sample",
    277: "samples_per_pixel",
    284: "planar_configuration",
    338: "extra_samples",
}
# field type -> struct code (BYTE, SHORT, LONG, LONG8)
_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}


class TiffPage(dict):
    """The tags of one TIFF page that matter here, each a tuple of ints (absent: missing).

    ``offset`` is where the page's directory starts in the file, ``next_at`` where it
    stores the offset of the next page (0 for a page not read from a file).

    Examples
    --------
    >>> TiffPage(ImageWidth=(640,)).first("ImageWidth", 0)
    640
    """

    def first(self, name: str, default: int) -> int:
        """Return the first value of tag ``name``, or ``default``.

        Parameters
        ----------
        name : str
            The tag's name, e.g. ``"SamplesPerPixel"``.
        default : int
            The value of a missing tag.

        Returns
        -------
        int
            The tag's first value.

        Examples
        --------
        >>> TiffPage(BitsPerSample=(8, 8, 8)).first("BitsPerSample", 1)
        8
        >>> TiffPage().first("SamplesPerPixel", 1)
        1
        """
        values = self.get(name) or (default,)
        return values[0]

    offset: int = 0
    next_at: int = 0


class FileView:
    """The bytes of an open file, read on demand by slicing (``view[a:b]``), never whole.

    Parameters
    ----------
    fd : int
        A file descriptor open for reading (read with ``os.pread``: its position is kept).
    size : int
        The file's size in bytes.

    Examples
    --------
    >>> import os, tempfile
    >>> path = tempfile.mkstemp()[1]
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"0123456789")
    >>> with open(path, "rb") as file:
    ...     FileView(file.fileno(), 10)[2:5]
    b'234'
    """

    def __init__(self, fd: int, size: int):
        self._fd, self._size = fd, size

    def __len__(self) -> int:
        """Return the file's size."""
        return self._size

    def __getitem__(self, index: slice) -> bytes:
        """Read the bytes of a slice (shorter at the end of the file, as for ``bytes``)."""
        start, stop, _ = index.indices(self._size)
        return os.pread(self._fd, max(0, stop - start), start) if stop > start else b""


def _unpack(code: str, data, offset: int) -> tuple:
    """Unpack ``code`` at ``offset`` of bytes or a :class:`FileView` (struct.error if short)."""
    if offset < 0:
        raise struct.error("negative offset")
    return struct.unpack(code, data[offset : offset + struct.calcsize(code)])


def header_pixels(data, limit: int | None = None) -> int | None:
    r"""Return the pixels the image in ``data`` decodes to (all pages), or None if not known.

    Parameters
    ----------
    data : bytes or FileView
        The file's content; only the header is read (a TIFF's pages wherever they are).
    limit : int, optional
        Stop reading a TIFF's pages once their pixels exceed ``limit`` (each page counts
        at least one): the count returned is then more than ``limit``, not the total.

    Returns
    -------
    int or None
        Width × height (summed over the pages of a TIFF) for PNG, JPEG, TIFF, BMP, WebP and
        PBM/PGM/PPM; None for other formats or when the header is too damaged to say.

    Examples
    --------
    >>> header_pixels(b"not an image") is None
    True
    """
    head = data[:16]
    try:
        if head[:8] == PNG_MAGIC and head[12:16] == b"IHDR":
            width, height = _unpack(">II", data, 16)
            return width * height
        if head[:3] == JPEG_MAGIC:
            return _jpeg_pixels(data)
        if head[:4] in TIFF_MAGICS:
            pages = tiff_pages(data, limit)
            return sum(_page_pixels(page) for page in pages) or None
        if head[:2] == b"BM":
            width, height = _unpack("<ii", data, 18)
            return abs(width) * abs(height)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_pixels(data[12:30])
        if len(head) >= 2 and head[:1] == b"P" and head[1:2] in b"123456":
            return _pnm_pixels(data[2:_PNM_HEADER_BYTES])
    except (struct.error, OverflowError):  # truncated, or offsets past any file
        return None
    return None


def _webp_pixels(chunk: bytes) -> int | None:
    """Canvas size from the first chunk of a WebP file (VP8X, VP8L or VP8)."""
    kind = chunk[:4]
    if kind == b"VP8X":
        width = int.from_bytes(chunk[12:15], "little") + 1
        height = int.from_bytes(chunk[15:18], "little") + 1
        return width * height if len(chunk) >= 18 else None
    if kind == b"VP8L" and len(chunk) >= 13 and chunk[8] == 0x2F:
        (bits,) = struct.unpack("<I", chunk[9:13])
        return ((bits & 0x3FFF) + 1) * (((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8 " and len(chunk) >= 18:
        width, height = struct.unpack("<HH", chunk[14:18])
        return (width & 0x3FFF) * (height & 0x3FFF)
    return None


def _pnm_pixels(text: bytes) -> int | None:
    """Width × height from a PBM/PGM/PPM header (after the two-byte magic number)."""
    fields = []
    for line in text.split(b"\n"):
        fields += line.split(b"#", 1)[0].split()
        if len(fields) >= 2:
            break
    if len(fields) < 2 or not all(field.isdigit() for field in fields[:2]):
        return None
    return int(fields[0]) * int(fields[1])


def _jpeg_pixels(data) -> int | None:
    position = 2
    while position + 4 <= len(data):
        marker_bytes = data[position : position + 4]
        if marker_bytes[0] != 0xFF:
            return None
        marker = marker_bytes[1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", marker_bytes[2:4])
        if marker in _JPEG_SOF:
            height, width = _unpack(">HH", data, position + 5)
            return width * height
        if marker == 0xDA:  # start of scan without a frame header
            return None
        position += 2 + length
    return None


def _page_pixels(page: TiffPage) -> int:
    return page.first("width", 0) * page.first("height", 0)


def tiff_pages(data, limit: int | None = None) -> list[TiffPage]:
    r"""List the pages of a classic TIFF or BigTIFF, with the tags of ``_TAGS``.

    Reading stops at the end of the chain of pages, at a loop, where the data is
    truncated (the pages read so far are returned), or once the pages hold more than
    ``limit`` pixels (each page counts at least one). ``data`` is bytes or a
    :class:`FileView` (one read per page, and one per tag whose values lie elsewhere).

    Parameters
    ----------
    data : bytes or FileView
        The file's bytes, from its first byte.
    limit : int, optional
        The most pixels worth reading pages for; None: every page.

    Returns
    -------
    list of TiffPage
        One per page read, in file order.

    Examples
    --------
    >>> tiff_pages(b"II*\x00\x00\x00\x00\x00")
    []
    """
    head = data[:4]
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    offset_code, count_code, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    pages: list[TiffPage] = []
    seen: set[int] = set()
    pixels = 0
    try:
        (offset,) = _unpack(order + offset_code, data, 8 if big else 4)
        while offset and offset not in seen and (limit is None or pixels <= limit):
            seen.add(offset)
            (n_entries,) = _unpack(order + count_code, data, offset)
            start = offset + struct.calcsize(count_code)
            size = entry_size * n_entries + struct.calcsize(offset_code)
            ifd = data[start : start + size]  # the page's entries and the next page's offset
            page = TiffPage()
            for index in range(n_entries):
                tag, kind = _unpack(order + "HH", ifd, entry_size * index)
                if tag in _TAGS and kind in _TYPES:
                    entry = ifd[entry_size * index : entry_size * (index + 1)]
                    page[_TAGS[tag]] = _tag_values(data, entry, order, big, kind)
            page.offset, page.next_at = offset, start + entry_size * n_entries
            pages.append(page)
            pixels += max(1, _page_pixels(page))
            (offset,) = _unpack(order + offset_code, ifd, entry_size * n_entries)
    except (struct.error, OverflowError):  # truncated, or offsets past any file
        pass
    return pages


def _tag_values(data, entry: bytes, order: str, big: bool, kind: int) -> tuple:
    pointer = "Q" if big else "I"
    (count,) = _unpack(order + pointer, entry, 4)
    count = min(count, 16)  # these tags hold a value per sample at most
    code = f"{order}{count}{_TYPES[kind]}"
    field = entry[12:] if big else entry[8:]
    if struct.calcsize(code) <= len(field):
        return _unpack(code, field, 0)
    (value_at,) = _unpack(order + pointer, field, 0)
    return _unpack(code, data, value_at)
