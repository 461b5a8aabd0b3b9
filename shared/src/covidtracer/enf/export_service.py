"""Export use cases: build signed export files, list them, serve them, expire them.

The windows and discovery rules are in ``export_model``; the run is one at a time through
the ``export_lease`` row and safe to repeat: a window is built only if no file records it,
its object keys and export.bin bytes depend only on the keys (a re-run overwrites the same
objects; ECDSA signatures are randomised, so export.sig may differ but always verifies),
and file rows are inserted ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from covidtracer import db
from covidtracer.analytics.emitter import emit
from covidtracer.enf import export_db as sql
from covidtracer.enf import export_model as model
from covidtracer.enf import tokens
from covidtracer.enf.batching import MAX_KEYS_PER_FILE, file_chunks
from covidtracer.enf.exportfile import (
    PACKED_KEY,
    ExportBatch,
    SignatureInfo,
    build_zip,
    encode_packed_export_bin,
    encode_signature_list,
)
from covidtracer.enf.signing import Signer
from covidtracer.errors import NotFound, ValidationError
from covidtracer.logs import get_logger
from covidtracer.settings import EnfSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection

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
class ExportResult:
    skipped: bool
    files: int = 0
    keys: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {"skipped": self.skipped, "files": self.files, "keys": self.keys}


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


@contextmanager
def _own_connection(settings: EnfSettings) -> Iterator[connection]:
    """A connection for this run only: concurrent runs (threads, Lambdas) never share one."""
    import psycopg2

    database = settings.database
    try:
        conn = psycopg2.connect(
            db.dsn_for(database), connect_timeout=database.connect_timeout_seconds
        )
    except psycopg2.OperationalError as exc:
        from covidtracer.errors import Unavailable

        raise Unavailable("database") from exc
    try:
        yield conn
    finally:
        conn.close()


def export_keys(
    settings: EnfSettings,
    signer: Signer,
    store: FileStore,
    now: datetime,
    *,
    max_per_file: int = MAX_KEYS_PER_FILE,
    holder: str | None = None,
) -> ExportResult:
    """Build every planned window not yet built; returns what was written.

    Returns ``skipped=True`` without doing anything if another run holds the lease. Raises
    ``Unavailable`` if the database, KMS or S3 fails; nothing is recorded for a window whose
    objects were not all written, so the next run builds it again.
    """
    config = settings.export
    holder = holder or uuid.uuid4().hex
    windows = model.plan_windows(
        _epoch(now), config.file_retention_days, config.window_minutes * 60
    )
    info = SignatureInfo(config.verification_key_version, config.verification_key_id)
    with _own_connection(settings) as conn:
        with conn, conn.cursor() as cur:
            taken = sql.take_lease(cur, holder, now, now + timedelta(seconds=config.lease_seconds))
        if not taken:
            log.info("enf export skipped: another run holds the lease")
            return ExportResult(skipped=True)
        try:
            with conn, conn.cursor() as cur:
                oldest = datetime.fromtimestamp(windows[0].start, UTC) if windows else now
                built = sql.built_windows(cur, oldest)
            files = keys = 0
            for window in windows:
                if (window.start, window.end) in built:
                    continue
                written = _export_window(
                    conn,
                    window,
                    info,
                    config.region,
                    signer,
                    store,
                    now,
                    config.compression_level,
                    max_per_file,
                )
                files += len(written)
                keys += sum(f.key_count for f in written)
            if files:
                _write_index(conn, store)
        finally:
            with conn, conn.cursor() as cur:
                sql.release_lease(cur, holder)
    from covidtracer.enf.kms_signer import put_completed_metric

    put_completed_metric(settings.stage, files, keys)
    emit("export_files_written", counts={"files": files, "keys": keys}, now=now)
    return ExportResult(skipped=False, files=files, keys=keys)


def _export_window(
    conn: connection,
    window: model.Window,
    info: SignatureInfo,
    region: str,
    signer: Signer,
    store: FileStore,
    now: datetime,
    compression_level: int,
    max_per_file: int,
) -> list[sql.NewFile]:
    with conn, conn.cursor() as cur:
        packed = memoryview(sql.packed_keys(cur, window))
    row = PACKED_KEY.size
    chunks = file_chunks(len(packed) // row, max_per_file)
    written: list[sql.NewFile] = []
    for part, (chunk, bump) in enumerate(chunks, start=1):
        file_batch = ExportBatch(
            start_timestamp=window.start,
            end_timestamp=window.end + bump,
            region=region,
            batch_num=1,
            batch_size=1,
            signature_infos=(info,),
            keys=(),
        )
        keys = packed[chunk.start * row : chunk.stop * row]
        export_bin = encode_packed_export_bin(file_batch, keys)
        export_sig = encode_signature_list(
            info, file_batch.batch_num, file_batch.batch_size, signer.sign(export_bin)
        )
        body = build_zip(export_bin, export_sig, compresslevel=compression_level)
        path = model.object_path(window, part)
        store.put(path, body, ZIP_CONTENT_TYPE, FILE_CACHE_CONTROL)
        written.append(
            sql.NewFile(
                path=path,
                window=window,
                start_timestamp=file_batch.start_timestamp,
                end_timestamp=file_batch.end_timestamp,
                part=part,
                parts=len(chunks),
                batch_num=file_batch.batch_num,
                batch_size=file_batch.batch_size,
                key_count=len(keys) // row,
            )
        )
    if written:
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
    return written


def _write_index(conn: connection, store: FileStore) -> None:
    with conn, conn.cursor() as cur:
        files = sql.all_files(cur)
    store.put(
        model.INDEX_PATH,
        model.index_text(files).encode("ascii"),
        "text/plain",
        INDEX_CACHE_CONTROL,
    )


def cleanup_files(
    settings: EnfSettings, store: FileStore, now: datetime, retention_days: int = 14
) -> int:
    """Delete files (objects, then rows) whose window ended over ``retention_days`` ago.

    Objects go first: a crash in between leaves rows that the next run deletes again,
    never objects nobody tracks. Rewrites index.txt. Returns how many files went.
    """
    cutoff = now - timedelta(days=retention_days)
    with _own_connection(settings) as conn:
        with conn, conn.cursor() as cur:
            paths = sql.files_ending_before(cur, cutoff)
        if not paths:
            return 0
        store.delete(paths)
        with conn, conn.cursor() as cur:
            deleted = sql.delete_files_ending_before(cur, cutoff)
        _write_index(conn, store)
    log.info("enf export files deleted", extra={"files": len(deleted)})
    return len(deleted)


# ---------------------------------------------------------------------------- discovery


def _parse_int(query: Mapping[str, Any], name: str, field: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        raise ValidationError.of(field, f"{field} must be a non-negative whole number.")
    return int(raw)


def list_files(
    settings: EnfSettings,
    signing_key: str,
    bearer: str | None,
    query: Mapping[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """``GET /exposures``: current files with id > ``since``, oldest first, at most ``limit``.

    Raises ``Unauthorized`` without a valid access token, ``ValidationError`` for a
    ``since`` or ``limit`` that is not a whole number (``limit`` 1..the configured max).
    """
    tokens.verify(signing_key, bearer, kind=tokens.ACCESS, now=now)
    config = settings.export
    since = _parse_int(query, "since", "Since", 0)
    limit = _parse_int(query, "limit", "Limit", config.list_default_limit)
    if not 1 <= limit <= config.list_max_limit:
        raise ValidationError.of("Limit", f"Limit must be between 1 and {config.list_max_limit}.")
    with db.transaction(settings.database) as cur:
        rows = sql.current_files_after(cur, since, limit)
    return [{"id": file_id, "path": path} for file_id, path in rows]


def read_file(
    settings: EnfSettings,
    signing_key: str,
    store: FileStore,
    bearer: str | None,
    path: str,
    now: datetime,
) -> bytes:
    """``GET /data/{path}``: an export zip's bytes.

    Raises ``Unauthorized`` without a valid access token and ``NotFound`` for anything that
    is not an existing export zip (no other object of the bucket is ever served).
    """
    tokens.verify(signing_key, bearer, kind=tokens.ACCESS, now=now)
    if not model.is_export_object(path):
        raise NotFound()
    return store.get(path)
