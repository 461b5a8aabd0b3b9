"""The export's deflate stage: a file deflated page by page while it is framed is the same
file phones read from ``build_zip``, whatever the header becomes at the end."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from covidtracer.enffiles import pipeline
from covidtracer.enffiles.exportfile import build_zip
from covidtracer.enffiles.pipeline import StreamingDeflate

HEADER = b"EK Export v1    " + bytes(range(40))


def pages(n: int = 6) -> list[bytes]:
    # Random keys between repeated framing, as an export.bin's pages look.
    return [b"".join(b"\x3a\x1c\x0a\x10" + os.urandom(16) + b"\x10\x04" for _ in range(2_000))
            for _ in range(n)]  # fmt: skip


def test_a_file_deflated_page_by_page_unzips_to_the_export_bin_with_build_zips_entries() -> None:
    framed = pages()
    with ThreadPoolExecutor(1) as pool:
        deflate = StreamingDeflate(1, len(HEADER), pool)
        for page in framed:
            deflate.feed(page)
        export_bin = bytearray(HEADER + b"".join(framed))
        export_bin[24:32] = b"\x01" * 8  # the split rule rewrites end_timestamp at the end
        body = deflate.zip(export_bin, b"signature list")
    streamed = zipfile.ZipFile(io.BytesIO(body))
    reference = zipfile.ZipFile(io.BytesIO(build_zip(export_bin, b"signature list")))
    assert streamed.testzip() is None
    assert streamed.read("export.bin") == bytes(export_bin)
    assert streamed.read("export.sig") == b"signature list"
    fields = (
        "filename", "date_time", "compress_type", "create_system", "create_version",
        "extract_version", "flag_bits", "external_attr", "CRC", "file_size", "extra",
    )  # fmt: skip
    for ours, theirs in zip(streamed.infolist(), reference.infolist(), strict=True):
        assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]


def test_pages_are_compressed_on_the_pool_thread_and_at_most_a_few_wait() -> None:
    gate = threading.Event()
    threads: set[str] = set()
    with ThreadPoolExecutor(1, thread_name_prefix="deflate") as pool:
        pool.submit(gate.wait)  # the deflate thread is busy
        deflate = StreamingDeflate(1, len(HEADER), pool)
        fed = threading.Thread(target=lambda: [deflate.feed(p) for p in pages(4)])
        fed.start()
        fed.join(0.3)
        try:
            # Back-pressure: the framing waits once PAGES_AHEAD pages wait for the thread.
            assert fed.is_alive()
            assert deflate.fed == len(HEADER) + pipeline.PAGES_AHEAD * len(pages(1)[0])
        finally:
            gate.set()
        fed.join(5)
        pool.submit(lambda: threads.add(threading.current_thread().name)).result()
    assert not fed.is_alive() and threads == {"deflate_0"}


def test_an_export_bin_that_is_not_what_was_deflated_is_refused() -> None:
    with ThreadPoolExecutor(1) as pool:
        deflate = StreamingDeflate(1, len(HEADER), pool)
        deflate.feed(b"abc")
        with pytest.raises(ValueError, match="deflated"):
            deflate.zip(HEADER + b"abcd", b"")
