"""How event bodies are stored: zstd with a dictionary trained on Redo's schema.

A webhook body is small (~5 KB) and mostly field names, which general-purpose
compressors must learn afresh in every body. A zstd dictionary trained once on
bodies generated from Redo's spec (``scripts/train-body-dictionary``) carries
them instead, and keeps fewer bytes than zlib in less CPU
(``benchmarks/dispatch.py`` prints the bytes per event; ``benchmarks/README.md``).

Versioned: every dictionary ever shipped stays in ``redo_hooks/data`` as
``bodies-v<N>.zdict``, and each zstd frame names the id of the dictionary it
needs, so bodies stored by any release since 0.2.0 stay readable. (The
zlib bodies of 0.1 are not: no released version wrote them, see
``CHANGELOG.md``.)
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources

import zstandard

#: The dictionary new bodies are compressed with.
CURRENT = "bodies-v1.zdict"
#: zstd level: 3, zstd's default; higher levels cost CPU for few bytes here.
LEVEL = 3
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_local = threading.local()  # zstandard's (de)compressors are one per thread


@cache
def dictionaries() -> dict[int, zstandard.ZstdCompressionDict]:
    """Every shipped dictionary, by the id its frames carry."""
    found = {}
    for entry in resources.files("redo_hooks").joinpath("data").iterdir():
        if entry.name.startswith("bodies-v") and entry.name.endswith(".zdict"):
            loaded = zstandard.ZstdCompressionDict(entry.read_bytes())
            found[loaded.dict_id()] = loaded
    return found


@cache
def _current() -> zstandard.ZstdCompressionDict:
    data = resources.files("redo_hooks").joinpath("data", CURRENT).read_bytes()
    loaded = zstandard.ZstdCompressionDict(data)
    loaded.precompute_compress(level=LEVEL)
    return loaded


def compress(body: bytes) -> bytes:
    """A body as stored: a zstd frame that names its dictionary."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(dict_data=_current(), write_content_size=True)
        _local.compressor = compressor
    return compressor.compress(body)


def decompress(stored: bytes) -> bytes:
    """A body as received, from what any release since 0.2.0 stored.

    Raises ``ValueError`` for bytes that are not a zstd frame, or that need
    a dictionary this release does not ship.
    """
    if not stored.startswith(_ZSTD_MAGIC):
        raise ValueError("stored body is not a zstd frame")
    dict_id = zstandard.get_frame_parameters(stored).dict_id
    decompressors = getattr(_local, "decompressors", None)
    if decompressors is None:
        decompressors = _local.decompressors = {}
    decompressor = decompressors.get(dict_id)
    if decompressor is None:
        known = dictionaries().get(dict_id)
        if dict_id and known is None:
            raise ValueError(f"stored body needs zstd dictionary {dict_id}, not shipped here")
        decompressor = zstandard.ZstdDecompressor(dict_data=known)
        decompressors[dict_id] = decompressor
    try:
        return decompressor.decompress(stored)
    except zstandard.ZstdError as exc:
        raise ValueError(f"stored body is not a valid zstd frame: {exc}") from None
