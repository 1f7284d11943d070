"""A corpus of hostile inputs for ``load_image`` and ``load_model``.

Run it to write the corpus to a folder, for fuzzers or other readers::

    python tests/hostile_corpus.py /tmp/corpus

``tests/test_hostile.py`` builds it in a temporary folder and checks that every file either
loads correctly or raises the module's own error (``ImageLoadError``, ``ModelFileError``).

What it holds:

- valid seeds: PNG (8/16-bit, grey, RGB, RGBA), JPEG, TIFF (RGB, multi-page, unassociated
  and associated alpha, big-endian, float32, separate planes), BMP, WebP;
- each seed truncated at every offset of its first 64 bytes and at 24 offsets beyond;
- random bytes behind each format's magic number, and files of one repeated byte;
- headers claiming huge images (PNG, JPEG, TIFF, BigTIFF, BMP, PPM, WebP), no pixel data;
- TIFFs of pixel types the package refuses (int8, int16, int32, uint32, float16, float64);
- model files: a valid one, deeply nested JSON, and one mutation per field (removed, null,
  wrong type, negative, NaN, infinite, huge, empty, wrong shape).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

RNG_SEED = 20261127
TRUNCATION_HEAD = 64  # every offset below this
TRUNCATION_SPREAD = 24  # and this many spread over the rest


def _encode(extension: str, bgr: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(extension, bgr)
    assert ok, extension
    return encoded.tobytes()


def _tiff(array: np.ndarray, **kwargs) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def image_seeds() -> dict[str, tuple[bytes, np.ndarray | None]]:
    """Valid files, each with the array ``load_image`` must return (None: lossy format)."""
    rng = np.random.default_rng(RNG_SEED)
    rgb8 = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (7, 5), dtype=np.uint16)
    rgba8 = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba8[..., 3] = np.linspace(0, 255, 8).astype(np.uint8)  # alpha 0 .. 255, 128 in between
    stack = rng.integers(0, 65536, (3, 6, 7), dtype=np.uint16)
    floats = rng.random((5, 6, 3)).astype(np.float32)
    seeds: dict[str, tuple[bytes, np.ndarray | None]] = {
        "rgb8.png": (_encode(".png", rgb8[..., ::-1]), rgb8),
        "grey16.png": (_encode(".png", grey16), grey16),
        "rgba8.png": (_encode(".png", rgba8[..., [2, 1, 0, 3]]), rgba8),
        "rgb8.jpg": (_encode(".jpg", rgb8[..., ::-1]), None),
        "rgb8.bmp": (_encode(".bmp", rgb8[..., ::-1]), rgb8),
        "rgb8.webp": (_encode(".webp", rgb8[..., ::-1]), None),
        "rgb8.tif": (_encode(".tif", rgb8[..., ::-1]), rgb8),
        "stack16.tif": (_tiff(stack, photometric="minisblack"), stack),
        "unassociated.tif": (_tiff(rgba8, photometric="rgb", extrasamples=["unassalpha"]), rgba8),
        "associated.tif": (_tiff(rgba8, photometric="rgb", extrasamples=["assocalpha"]), rgba8),
        "bigendian16.tif": (_tiff(grey16, photometric="minisblack", byteorder=">"), grey16),
        "bigendian_rgb16.tif": (
            _tiff(rgb8.astype(np.uint16) * 257, photometric="rgb", byteorder=">"),
            rgb8.astype(np.uint16) * 257,
        ),
        "float32.tif": (_tiff(floats, photometric="rgb"), floats),
        "planar16.tif": (
            _tiff(stack, photometric="rgb", planarconfig="separate"),
            np.moveaxis(stack, 0, -1),
        ),
    }
    return seeds


def truncations(data: bytes) -> list[int]:
    """Offsets at which to cut ``data``: every one of the head, then spread to the end."""
    head = list(range(min(TRUNCATION_HEAD, len(data))))
    spread = np.linspace(TRUNCATION_HEAD, len(data) - 1, TRUNCATION_SPREAD).astype(int)
    return sorted(set(head) | {int(o) for o in spread if o < len(data)})


def _png_header(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", crc)


def _jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + sof + b"\xff\xd9"


def _tiff_header(width: int, height: int, big: bool) -> bytes:
    if big:
        entries = [(256, 16, 1, width), (257, 16, 1, height), (277, 3, 1, 3)]
        ifd = struct.pack("<Q", len(entries))
        for tag, kind, count, value in entries:
            ifd += struct.pack("<HHQQ", tag, kind, count, value)
        return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + ifd + struct.pack("<Q", 0)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info


def bomb_headers() -> dict[str, bytes]:
    """Headers of 100,000 × 100,000 images (10^10 pixels) with no pixel data behind them."""
    side = 100_000
    return {
        "bomb.png": _png_header(side, side),
        "bomb.jpg": _jpeg_header(60_000, 60_000),
        "bomb.tif": _tiff_header(side, side, big=False),
        "bomb_big.tif": _tiff_header(side, side, big=True),
        "bomb.bmp": _bmp_header(side, side),
        "bomb.ppm": b"P6\n# a comment\n100000 100000\n255\n",
        "bomb.webp": b"RIFF"
        + struct.pack("<I", 22)
        + b"WEBP"
        + b"VP8X"
        + struct.pack("<I", 10)
        + b"\x00\x00\x00\x00"
        + (side - 1).to_bytes(3, "little") * 2,
    }


def odd_dtype_tiffs() -> dict[str, bytes]:
    """TIFFs of pixel types ``load_image`` refuses (or OpenCV cannot decode)."""
    shape = (4, 5)
    return {
        f"{dtype}.tif": _tiff(np.ones(shape, dtype), photometric="minisblack")
        for dtype in ("int8", "int16", "int32", "uint32", "float16", "float64")
    }


def random_files() -> dict[str, bytes]:
    """Random bytes behind each magic number, and runs of one byte."""
    rng = np.random.default_rng(RNG_SEED + 1)
    magics = {
        "png": b"\x89PNG\r\n\x1a\n",
        "jpg": b"\xff\xd8\xff",
        "tif": b"II*\x00",
        "mm.tif": b"MM\x00*",
        "bigtiff.tif": b"II+\x00",
        "bmp": b"BM",
        "webp": b"RIFF\x00\x01\x00\x00WEBP",
        "none": b"",
    }
    files = {}
    for name, magic in magics.items():
        for size in (1, 16, 300, 5000):
            files[f"random{size}.{name}"] = magic + rng.bytes(size)
    for byte in (0, 0xFF):
        files[f"run{byte}.bin"] = bytes([byte]) * 4096
    return files


def image_corpus() -> dict[str, bytes]:
    """Every hostile image file of the corpus, by name."""
    corpus = {}
    for name, (data, _) in image_seeds().items():
        corpus[name] = data
        for offset in truncations(data):
            corpus[f"cut{offset:06d}_{name}"] = data[:offset]
    corpus.update(bomb_headers())
    corpus.update(odd_dtype_tiffs())
    corpus.update(random_files())
    return corpus


def model_seed() -> dict:
    """A valid model file's content (fitted here, on a small RGB image)."""
    import napari_kmeans as nk
    from napari_kmeans.io.model_file import model_to_dict

    rng = np.random.default_rng(RNG_SEED)
    image = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    return model_to_dict(nk.fit(image, n_clusters=3, seed=0, spatial_weight=0.5))


_BAD_VALUES = (
    None,
    True,
    "text",
    -1,
    0,
    1e309,  # infinity once written as JSON
    float("nan"),
    [],
    [[]],
    {},
    [1.0, "x"],
    2**70,
)


def leaf_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):  # the first two items of a list stand for all
            yield from leaf_paths(item, (*path, index))


def replaced(document, path, value):
    document = json.loads(json.dumps(document))
    if not path:
        return value
    holder = document
    for key in path[:-1]:
        holder = holder[key]
    if value is REMOVE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return document


REMOVE = object()


def model_corpus() -> dict[str, str]:
    """Model files: valid, deeply nested, and every field removed or replaced by bad values."""
    seed = model_seed()
    corpus = {"valid.json": json.dumps(seed)}
    corpus["nested.json"] = (
        '{"format": "napari-kmeans-model", "version": 1, "recipe": '
        + ("[" * 100_000)
        + ("]" * 100_000)
        + "}"
    )
    corpus["nested_list.json"] = "[" * 50_000 + "]" * 50_000
    for number, path in enumerate(leaf_paths(seed)):
        label = "_".join(map(str, path)) or "root"
        if path and not isinstance(path[-1], int):
            corpus[f"m{number:04d}_{label}_removed.json"] = json.dumps(replaced(seed, path, REMOVE))
        for index, value in enumerate(_BAD_VALUES):
            corpus[f"m{number:04d}_{label}_bad{index}.json"] = json.dumps(
                replaced(seed, path, value)
            )
    return corpus


def write_corpus(folder: Path) -> None:
    """Write the image and model corpus under ``folder`` (``images/``, ``models/``)."""
    for kind, files in (("images", image_corpus()), ("models", model_corpus())):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / kind / name).write_bytes(data)


if __name__ == "__main__":
    write_corpus(Path(sys.argv[1]))
