"""Export use cases: build signed export files, list them, serve them, expire them.

Each use case is ``f(deps, request, now)``: ``deps`` (`Deps`) holds the settings and the
adapters, ``request`` what the caller asks for. The windows and discovery rules are in
``model``; the run is one at a time through the ``export_lease`` row and safe to repeat: a
window is built only if no file records it, its object keys and export.bin bytes depend only
on the keys (a re-run overwrites the same objects; ECDSA signatures are randomised, so
export.sig may differ but always verifies), and file rows are inserted ``ON CONFLICT DO
NOTHING``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import Full, Queue
from typing import TYPE_CHECKING, Any, Protocol

from covidtracer import db
from covidtracer.analytics.emitter import emit
from covidtracer.enffiles import db as sql
from covidtracer.enffiles import model, padding
from covidtracer.enffiles.batching import MAX_KEYS_PER_FILE
from covidtracer.enffiles.exportfile import (
    PACKED_KEY,
    ExportBatch,
    PackedExportBin,
    SignatureInfo,
    encode_signature_list,
)
from covidtracer.enffiles.pipeline import StreamingDeflate
from covidtracer.enffiles.settings import EnfExportSettings
from covidtracer.errors import NotFound, ValidationError
from covidtracer.logs import get_logger
from covidtracer.settings import DatabaseSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection

    from covidtracer.enffiles.signing import Signer

log = get_logger(__name__)

ZIP_CONTENT_TYPE = "application/zip"
# Files never change once written; the index changes every few hours.
FILE_CACHE_CONTROL = "public, max-age=86400, immutable"
INDEX_CACHE_CONTROL = "public, max-age=300"


class FileStore(Protocol):
    def put(self, path: str, body: bytes, content_type: str, cache_control: str) -> None: ...

    def get(self, path: str) -> bytes: ...

    def delete(self, paths: list[str]) -> None: ...


@dataclass(frozen=True)
class Deps:
    """What the export use cases need: their settings and adapters (``wiring.deps``)."""

    database: DatabaseSettings
    export: EnfExportSettings
    stage: str
    signer: Signer
    store: FileStore
    # The server secret fake keys are derived from (``padding``); needed when
    # ``export.pad_files`` is on.
    padding_key: Callable[[], bytes] | None
    # ``metrics.put_completed_metric``: the datapoint the export-lag alarm watches.
    completed: Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExportRun:
    """One run of the export job: who holds the lease, and how files and pages are cut."""

    holder: str | None = None
    max_per_file: int = MAX_KEYS_PER_FILE
    page_keys: int = sql.PAGE_KEYS


@dataclass(frozen=True)
class ExportResult:
    skipped: bool
    files: int = 0
    keys: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {"skipped": self.skipped, "files": self.files, "keys": self.keys}


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def export_keys(deps: Deps, run: ExportRun, now: datetime) -> ExportResult:
    """Build every planned window not yet built; returns what was written.

    With ``export.pad_files``, every file holds its day's fake keys (``padding``: derived
    from ``deps.padding_key()``, a server secret), so a re-run writes the same export.bin
    and no comparison of a day's files separates real keys from fakes. Returns
    ``skipped=True`` without doing anything if another run holds the lease. Raises
    ``Unavailable`` if the database, KMS or S3 fails; nothing is recorded for a window whose
    objects were not all written, so the next run builds it again. Raises ``ValueError`` if
    padding is on and there is no ``padding_key``.
    """
    config = deps.export
    if config.pad_files and deps.padding_key is None:
        raise ValueError("ENF_EXPORT_PAD_FILES is on: export_keys needs a padding_key")
    holder = run.holder or uuid.uuid4().hex
    windows = model.plan_windows(
        _epoch(now),
        config.file_retention_days,
        config.window_minutes * 60,
        settle_seconds=config.settle_seconds,
    )
    # A connection for this run only: concurrent runs (threads, Lambdas) never share one.
    with db.own_connection(deps.database) as conn:
        with conn, conn.cursor() as cur:
            taken = sql.take_lease(cur, holder, now, now + timedelta(seconds=config.lease_seconds))
        if not taken:
            log.info("enf export skipped: another run holds the lease")
            return ExportResult(skipped=True)
        try:
            with conn, conn.cursor() as cur:
                oldest = datetime.fromtimestamp(windows[0].start, UTC) if windows else now
                built = sql.built_windows(cur, oldest)
            todo = [w for w in windows if (w.start, w.end) not in built]
            fakes = None
            if config.pad_files and deps.padding_key is not None:
                fakes = _plan_padding(conn, deps.padding_key(), config, todo)
            files_run = _Run(
                info=SignatureInfo(config.verification_key_version, config.verification_key_id),
                region=config.region,
                signer=deps.signer,
                store=deps.store,
                now=now,
                compression_level=config.compression_level,
                max_per_file=run.max_per_file,
                padding=fakes,
            )
            files = keys = 0
            if todo:
                files, keys = _export_windows(deps.database, conn, todo, files_run, run.page_keys)
            if files:
                _write_index(conn, deps.store)
        finally:
            with conn, conn.cursor() as cur:
                sql.release_lease(cur, holder)
    deps.completed(deps.stage, files, keys)
    emit("export_files_written", counts={"files": files, "keys": keys}, now=now)
    return ExportResult(skipped=False, files=files, keys=keys)


PREFETCH_PAGES = 2
"""Pages the reader thread may be ahead of the encoder: enough to keep PostgreSQL busy
while a page is encoded, few enough to cost 4 MiB."""


def _plan_padding(
    conn: connection, secret: bytes, config: EnfExportSettings, windows: list[model.Window]
) -> padding.Padding:
    """The windows' fakes, their samples of real keys read now on ``conn`` (the pipeline's
    threads then need no database for them)."""
    with conn, conn.cursor() as cur:
        return padding.plan(
            lambda day, start, limit: sql.sample_keys(cur, day, start, limit),
            secret,
            config.region,
            windows,
            config.window_minutes * 60,
        )


@dataclass(frozen=True)
class _Run:
    """What every file of one export run shares."""

    info: SignatureInfo
    region: str
    signer: Signer
    store: FileStore
    now: datetime
    compression_level: int
    max_per_file: int
    padding: padding.Padding | None


def _export_windows(
    database: DatabaseSettings,
    conn: connection,
    windows: list[model.Window],
    run: _Run,
    page_keys: int,
) -> tuple[int, int]:
    """Write the windows' files; returns (files, keys). A pipeline over both cores:

    - a reader thread pages each window's keys out of PostgreSQL on a connection of its
      own (one REPEATABLE READ snapshot per window), up to `PREFETCH_PAGES` ahead, so the
      database works while this thread encodes;
    - this thread frames the pages into export.bin, one file at a time (at most
      ``max_per_file`` keys: memory follows the file cap, not the window);
    - a deflate thread compresses each page's framed bytes as they are written
      (``pipeline.StreamingDeflate``; zlib releases the GIL), so a file is deflated by the
      time its last page is read;
    - a finisher thread signs the previous file, finishes its zip and uploads it, then
      records a window once all its files are written.

    Memory: the pages in flight, the file being framed (and its deflated blocks) and the
    one being finished.
    """
    with (
        ThreadPoolExecutor(1, thread_name_prefix="enf-export-finish") as finisher,
        ThreadPoolExecutor(1, thread_name_prefix="enf-export-deflate") as deflater,
    ):
        handoff = _Handoff(finisher)
        files = keys = 0
        try:
            with db.own_connection(database) as reader:
                reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
                window: _WindowWriter | None = None
                pages = _prefetched(_pages(reader, windows, page_keys))
                with closing(pages):  # the reader thread ends before its connection
                    for current, page in pages:
                        if window is None:
                            window = _WindowWriter(run, current, handoff, deflater)
                        if not isinstance(page, _Revised):
                            window.add(page)
                            continue
                        written = window.close(page)
                        if written:
                            handoff.submit(_record_window, conn, current, written, run.now)
                        files += len(written)
                        keys += sum(f.key_count for f in written)
                        window = None
            handoff.wait()
        except BaseException:
            handoff.abandon()
            raise
    return files, keys


class _Revised(bytes):
    """The end of a window's pages, carrying its revised keys (`PACKED_KEY` rows)."""


def _pages(
    reader: connection, windows: list[model.Window], page_keys: int
) -> Iterator[tuple[model.Window, bytes]]:
    """(window, page) for every page of every window, then (window, its revised keys as a
    `_Revised`) at its end, read in the same snapshot."""
    with reader, reader.cursor() as cur:
        revisions = sql.any_revised_keys(cur)  # one query a run, not one a window
    for window in windows:
        with reader, reader.cursor() as cur:
            for page in sql.packed_pages(cur, window, page_keys):
                yield window, page
            revised = sql.packed_revised_keys(cur, window) if revisions else b""
        yield window, _Revised(revised)


class _Handoff:
    """The finisher's queue, one task deep: a new task waits for the previous one (memory
    stays at one file being finished) and its failure surfaces in this thread."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._pending: Future[None] | None = None

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(task, *args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def abandon(self) -> None:
        """Let the task in flight end without raising its result here (already failing)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.exception()


class _WindowWriter:
    """One window's files, from its pages in key order, by `batching.split_batch`'s rule,
    with the window's fake keys (``padding``) merged in key order.

    A file's end_timestamp bump depends on whether the window has more keys than fit in
    one file, which is known only when a key beyond the first file arrives; the header is
    rewritten then (`PackedExportBin.finish`). A file records its real keys' count.
    """

    def __init__(
        self,
        run: _Run,
        window: model.Window,
        handoff: _Handoff,
        deflater: ThreadPoolExecutor,
    ) -> None:
        self._run = run
        self._window = window
        self._handoff = handoff
        self._deflater = deflater
        self._split = False
        self._done: list[tuple[int, int, int]] = []  # (part, end_timestamp, real keys)
        self._fakes = run.padding.merger(window) if run.padding else padding.NO_PADDING
        self._revised = b""  # the revised keys, written into the window's last file
        self._start_file()

    def _start_file(self) -> None:
        self._file = PackedExportBin(self._batch(self._window.end))
        self._real = 0
        self._deflate = StreamingDeflate(
            self._run.compression_level, self._file.header_length, self._deflater
        )

    def _batch(self, end_timestamp: int) -> ExportBatch:
        return ExportBatch.one_of_one(
            self._window.start, end_timestamp, self._run.region, self._run.info
        )

    def add(self, page: bytes) -> None:
        for rows, fake in self._fakes.merged(page):
            self._append(rows, fake)
        self._feed()

    def _feed(self) -> None:
        """Hand what was framed since the last feed to the deflate thread: once per page,
        not per merged segment (a day's fakes cut a page into thousands of segments, and
        a hand-off per segment cost more than the deflate)."""
        framed = self._file.written_since(self._deflate.fed)
        if framed:
            self._deflate.feed(framed)

    def _append(self, rows: bytes | memoryview, fake: bool) -> None:
        view, row, cap = memoryview(rows), PACKED_KEY.size, self._run.max_per_file
        offset = 0
        while offset < len(view):
            if self._file.keys == cap:
                self._split = True  # a key beyond the first file: every file is numbered
                self._finish_file()
                self._start_file()
            take = min(cap - self._file.keys, (len(view) - offset) // row) * row
            self._file.append(view[offset : offset + take])
            if not fake:
                self._real += take // row
            offset += take

    def close(self, revised: bytes = b"") -> list[sql.NewFile]:
        """Finish the last file, with the window's ``revised`` keys; the window's files
        (none for a window without keys, real, fake or revised)."""
        for rows, fake in self._fakes.rest():
            self._append(rows, fake)
        if self._file.keys or revised:
            self._revised = revised
            self._finish_file()
        parts = len(self._done)
        return [
            sql.NewFile(
                path=model.object_path(self._window, part),
                window=self._window,
                start_timestamp=self._window.start,
                end_timestamp=end_timestamp,
                part=part,
                parts=parts,
                batch_num=1,
                batch_size=1,
                key_count=keys,
            )
            for part, end_timestamp, keys in self._done
        ]

    def _finish_file(self) -> None:
        part = len(self._done) + 1
        end_timestamp = self._window.end + (part if self._split else 0)
        if self._revised:
            self._file.append_revised(self._revised)
        self._feed()
        export_bin = self._file.finish(end_timestamp)
        self._done.append((part, end_timestamp, self._real))
        path = model.object_path(self._window, part)
        self._handoff.submit(_publish_file, self._run, path, [export_bin], self._deflate)


def _publish_file(
    run: _Run, path: str, holder: list[bytes | bytearray], deflate: StreamingDeflate
) -> None:
    """Sign, zip and upload one file (the finisher thread): its zip finished from the blocks
    deflated while it was framed (fakes included: they are merged into the pages). The
    export.bin comes in a list that this empties, so the file is freed once zipped, not only
    after the upload."""
    export_bin = holder.pop()
    signature = run.signer.sign(export_bin)
    export_sig = encode_signature_list(run.info, 1, 1, signature)
    body = deflate.zip(export_bin, export_sig)
    del export_bin
    run.store.put(path, body, ZIP_CONTENT_TYPE, FILE_CACHE_CONTROL)


def _record_window(
    conn: connection, window: model.Window, written: list[sql.NewFile], now: datetime
) -> None:
    """Record a window whose files are all written (the finisher thread, after them)."""
    with conn, conn.cursor() as cur:
        sql.insert_files(cur, written, now)
    log.info(
        "enf export window written",
        extra={
            "window_start": window.start,
            "window_end": window.end,
            "kind": window.kind,
            "files": len(written),
            "keys": sum(f.key_count for f in written),
        },
    )


def _prefetched[T](items: Iterator[T], depth: int = PREFETCH_PAGES) -> Generator[T]:
    """`items`, produced by a thread of their own up to ``depth`` ahead of the consumer.

    The producer's exception is raised here; when the consumer stops early, the producer
    is stopped and ``items`` closed in its own thread (which ends its transaction).
    """
    queue: Queue[tuple[int, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((_ITEM, item)):
                    return
            offer((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer((_ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="enf-export-read", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()


_ITEM, _END, _ERROR = 0, 1, 2


def _write_index(conn: connection, store: FileStore) -> None:
    with conn, conn.cursor() as cur:
        files = sql.all_files(cur)
    store.put(
        model.INDEX_PATH,
        model.index_text(files).encode("ascii"),
        "text/plain",
        INDEX_CACHE_CONTROL,
    )


def cleanup_files(deps: Deps, retention_days: int, now: datetime) -> int:
    """Delete files (objects, then rows) whose window ended over ``retention_days`` ago.

    Objects go first: a crash in between leaves rows that the next run deletes again,
    never objects nobody tracks. Rewrites index.txt. Returns how many files went.
    """
    cutoff = now - timedelta(days=retention_days)
    # A connection for this run only: concurrent runs (threads, Lambdas) never share one.
    with db.own_connection(deps.database) as conn:
        with conn, conn.cursor() as cur:
            paths = sql.files_ending_before(cur, cutoff)
        if not paths:
            return 0
        deps.store.delete(paths)
        with conn, conn.cursor() as cur:
            deleted = sql.delete_files_ending_before(cur, cutoff)
        _write_index(conn, deps.store)
    log.info("enf export files deleted", extra={"files": len(deleted)})
    return len(deleted)


# ---------------------------------------------------------------------------- discovery


def _parse_int(query: Mapping[str, Any], name: str, field: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: str.isdigit also accepts '²' and '٣', which int() then refuses.
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ValidationError.of(field, f"{field} must be a non-negative whole number.")
    return int(raw)


def list_files(deps: Deps, query: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """``GET /exposures``: current files with id > ``since``, oldest first, at most ``limit``
    (the caller has checked the phone's registration).

    Raises ``ValidationError`` for a ``since`` or ``limit`` that is not a whole number
    (``limit`` 1..the configured max).
    """
    config = deps.export
    since = _parse_int(query, "since", "Since", 0)
    limit = _parse_int(query, "limit", "Limit", config.list_default_limit)
    if not 1 <= limit <= config.list_max_limit:
        raise ValidationError.of("Limit", f"Limit must be between 1 and {config.list_max_limit}.")
    with db.autocommit(deps.database) as cur:  # one statement, atomic by itself
        rows = sql.current_files_after(cur, since, limit)
    return [{"id": file_id, "path": path} for file_id, path in rows]


def read_file(deps: Deps, path: str, now: datetime) -> bytes:
    """``GET /data/{path}``: an export zip's bytes (the caller has checked the phone's
    registration).

    Raises ``NotFound`` for anything that is not an existing export zip (no other object of
    the bucket is ever served).
    """
    if not model.is_export_object(path):
        raise NotFound()
    return deps.store.get(path)
