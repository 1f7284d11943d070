r"""What an image file's header says about its pixels, read before anything is decoded.

:func:`header_pixels` gives the number of pixels a PNG, JPEG, TIFF (every page, classic and
BigTIFF) or BMP will decode to, so that a file claiming a huge size is refused before it costs
memory; :func:`tiff_pages` gives the few TIFF tags that decide how a TIFF must be decoded.
Truncated or inconsistent headers give what could be read: the decoder reports the damage.

Examples
--------
>>> import struct, zlib
>>> ihdr = struct.pack(">IIBBBBB", 20000, 30000, 16, 2, 0, 0, 0)
>>> png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
>>> header_pixels(png)
600000000
"""

from __future__ import annotations

import struct

__all__ = ["TIFF_MAGICS", "TiffPage", "header_pixels", "tiff_pages"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF
_MAX_TIFF_PAGES = 100_000
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
    """The tags of one TIFF page that matter here, each a tuple of ints (absent: missing)."""

    def first(self, name: str, default: int) -> int:
        """Return the first value of tag ``name``, or ``default``."""
        values = self.get(name) or (default,)
        return values[0]


def header_pixels(data: bytes) -> int | None:
    """Pixels the image in ``data`` decodes to (all pages), or None if not known.

    Parameters
    ----------
    data : bytes
        The file's content (only the header is looked at).

    Returns
    -------
    int or None
        Width × height (summed over the pages of a TIFF) for PNG, JPEG, TIFF and BMP; None
        for other formats or when the header is too damaged to say.

    Examples
    --------
    >>> header_pixels(b"not an image") is None
    True
    """
    try:
        if data[:8] == PNG_MAGIC and data[12:16] == b"IHDR":
            width, height = struct.unpack_from(">II", data, 16)
            return width * height
        if data[:3] == JPEG_MAGIC:
            return _jpeg_pixels(data)
        if data[:4] in TIFF_MAGICS:
            pages = tiff_pages(data)
            return sum(p.first("width", 0) * p.first("height", 0) for p in pages) or None
        if data[:2] == b"BM":
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width) * abs(height)
    except (struct.error, OverflowError):  # truncated, or offsets past any file
        return None
    return None


def _jpeg_pixels(data: bytes) -> int | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width * height
        if marker == 0xDA:  # start of scan without a frame header
            return None
        position += 2 + length
    return None


def tiff_pages(data: bytes) -> list[TiffPage]:
    r"""List the pages of a classic TIFF or BigTIFF, with the tags of ``_TAGS``.

    Reading stops at the end of the chain of pages, at a loop, or where the data is
    truncated (the pages read so far are returned).

    Examples
    --------
    >>> tiff_pages(b"II*\x00\x00\x00\x00\x00")
    []
    """
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    offset_code, count_code, entry_size, field_size = (
        ("Q", "Q", 20, 8) if big else ("I", "H", 12, 4)
    )
    pages: list[TiffPage] = []
    seen: set[int] = set()
    try:
        (offset,) = struct.unpack_from(order + offset_code, data, 8 if big else 4)
        while offset and offset not in seen and len(pages) < _MAX_TIFF_PAGES:
            seen.add(offset)
            (n_entries,) = struct.unpack_from(order + count_code, data, offset)
            entries = offset + struct.calcsize(count_code)
            page = TiffPage()
            for index in range(n_entries):
                start = entries + entry_size * index
                tag, kind = struct.unpack_from(order + "HH", data, start)
                if tag in _TAGS and kind in _TYPES:
                    page[_TAGS[tag]] = _tag_values(data, order, start, big, kind, field_size)
            pages.append(page)
            (offset,) = struct.unpack_from(
                order + offset_code, data, entries + entry_size * n_entries
            )
    except (struct.error, OverflowError):  # truncated, or offsets past any file
        pass
    return pages


def _tag_values(data: bytes, order: str, start: int, big: bool, kind: int, field_size: int):
    (count,) = struct.unpack_from(order + ("Q" if big else "I"), data, start + 4)
    count = min(count, 16)  # these tags hold a value per sample at most
    code = f"{order}{count}{_TYPES[kind]}"
    value_at = start + (12 if big else 8)
    if struct.calcsize(code) > field_size:
        (value_at,) = struct.unpack_from(order + ("Q" if big else "I"), data, value_at)
    return struct.unpack_from(code, data, value_at)
