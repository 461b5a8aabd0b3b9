"""The export run's deflate stage: an export.bin is deflated while it is being framed, beside
the database reads, instead of in one piece once the file is complete.

Deflate is most of the run's work after the reads (zlib level 1 over ~34 bytes a key), and
a file is complete only when its last page has been read: done at the end, it is the tail
of every run. Here each page's framed bytes go to a thread of their own as they are
written (zlib releases the GIL, so it runs on the second core beside the framing thread
and PostgreSQL); at the file's end only the header and the last block are left.

The header is deflated apart, at the end, because the split rule may still rewrite it
(``PackedExportBin.finish``): it is compressed on its own and ended with a sync flush (a
byte-aligned, non-final block), and the keys' stream, begun with a fresh compressor that
refers to nothing before it, follows it; two such raw deflate streams concatenated are one
valid stream (RFC 1951 §3.2.3: blocks are independent but for the back-references, and
the keys' stream has none to the header). The zip around them is written here with the
fields ``exportfile.build_zip`` writes (fixed times, no extra fields, DOS attributes), so
phones read the same export.bin either way.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor

from covidtracer.enffiles.exportfile import EXPORT_BIN_NAME, EXPORT_SIG_NAME, ZIP_DATE_TIME

# Pages handed to the deflate thread and not yet compressed: back-pressure, so that the
# copies waiting for it stay a few pages (~2 MiB each), not a file.
PAGES_AHEAD = 2
_RAW_DEFLATE = -15  # no zlib header: the zip's entry is raw deflate
_DEFLATED = 8
_VERSION = 20  # 2.0: deflate
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
# What zipfile.ZipFile.writestr gives an entry that has none (rw------- for its owner).
_EXTERNAL_ATTR = 0o600 << 16


def _dos_time() -> tuple[int, int]:
    year, month, day, hour, minute, second = ZIP_DATE_TIME
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


class StreamingDeflate:
    """One export.bin's deflate, fed a page at a time on ``pool``'s thread (one worker, so
    the pages are compressed in order). ``zip`` finishes it."""

    def __init__(self, level: int, header_length: int, pool: ThreadPoolExecutor) -> None:
        self._level = level
        self._header_length = header_length
        self._pool = pool
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, _RAW_DEFLATE)
        self._blocks: list[Future[bytes]] = []
        self.fed = header_length  # bytes of the export.bin handed over so far

    def feed(self, data: bytes) -> None:
        """The export.bin's next bytes (after the header): compressed on the pool's thread.
        Waits while ``PAGES_AHEAD`` pages are still waiting for it."""
        if len(self._blocks) >= PAGES_AHEAD:
            # One worker compresses in order: once this block is done, so are all before it.
            self._blocks[-PAGES_AHEAD].result()
        self._blocks.append(self._pool.submit(self._compressor.compress, data))
        self.fed += len(data)

    def zip(self, export_bin: bytes | bytearray, export_sig: bytes) -> bytes:
        """The file phones download: ``export.bin`` (whose bytes after the header are those
        fed) then ``export.sig``, both deflated. Raises ``ValueError`` if ``export_bin`` is
        not what was fed."""
        if len(export_bin) != self.fed:
            raise ValueError(f"export.bin has {len(export_bin)} bytes, {self.fed} were deflated")
        header = zlib.compressobj(self._level, zlib.DEFLATED, _RAW_DEFLATE)
        head = header.compress(bytes(export_bin[: self._header_length]))
        head += header.flush(zlib.Z_SYNC_FLUSH)
        tail = self._pool.submit(self._compressor.flush, zlib.Z_FINISH)
        # The blocks stay separate up to the zip itself: one copy of the file, not three.
        body = [head, *(block.result() for block in self._blocks), tail.result()]
        self._blocks.clear()
        signature = zlib.compressobj(self._level, zlib.DEFLATED, _RAW_DEFLATE)
        sig_body = [signature.compress(export_sig) + signature.flush()]
        return _zip(
            [
                (EXPORT_BIN_NAME, body, zlib.crc32(export_bin), len(export_bin)),
                (EXPORT_SIG_NAME, sig_body, zlib.crc32(export_sig), len(export_sig)),
            ]
        )


def _zip(entries: list[tuple[str, list[bytes], int, int]]) -> bytes:
    """A zip of already deflated entries: (name, deflated parts, CRC-32, size)."""
    dos_time, dos_date = _dos_time()
    out: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, parts, crc, size in entries:
        encoded = name.encode("ascii")
        deflated = sum(len(part) for part in parts)
        local = _LOCAL.pack(
            b"PK\x03\x04", _VERSION, 0, 0, _DEFLATED, dos_time, dos_date,
            crc, deflated, size, len(encoded), 0,
        )  # fmt: skip
        entry = _CENTRAL.pack(
            b"PK\x01\x02", _VERSION, 0, _VERSION, 0, 0, _DEFLATED, dos_time, dos_date,
            crc, deflated, size, len(encoded), 0, 0, 0, 0, _EXTERNAL_ATTR, offset,
        )  # fmt: skip
        central.append(entry + encoded)
        out += [local, encoded, *parts]
        offset += len(local) + len(encoded) + deflated
    directory = b"".join(central)
    end = _END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), offset, 0)
    return b"".join([*out, directory, end])
