"""The export job's SQL: the lease, the key query and the files table (DESIGN §4 "Export").

Each function runs on the caller's cursor; the job uses a connection of its own (it is a
batch that must not share the request connection, and concurrent runs need their own).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from covidtracer.enffiles.exportfile import KEY_LENGTH, NO_ONSET, PACKED_KEY
from covidtracer.enffiles.model import (
    DAY_SECONDS,
    EMBARGO_SECONDS,
    INTERVAL_SECONDS,
    FileRecord,
    Window,
)
from covidtracer.enffiles.padding import SampledKey

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

LEASE_NAME = "enf-export"

KEY_QUERY_WORK_MEM = "64MB"
"""``work_mem`` for the key pages' transaction: the page query reads the index in key
order and needs no sort, but a plan that did sort (stale statistics) keeps a page's rows in
memory instead of spilling to disk (default 4 MB). One job runs at a time."""


class NewFile(NamedTuple):
    path: str
    window: Window
    start_timestamp: int
    end_timestamp: int
    part: int
    parts: int
    batch_num: int
    batch_size: int
    key_count: int


def take_lease(cur: cursor, holder: str, now: datetime, until: datetime) -> bool:
    """Take the export lease unless another holder's is unexpired; True if taken.

    A lease (not a session advisory lock) so that it survives RDS Proxy connection
    multiplexing; a crashed run's lease expires and the next run takes it.
    """
    cur.execute(
        "INSERT INTO export_lease (name, holder, expires_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
        " expires_at = EXCLUDED.expires_at WHERE export_lease.expires_at <= %s RETURNING holder",
        (LEASE_NAME, holder, until, now),
    )
    return cur.fetchone() is not None


def release_lease(cur: cursor, holder: str) -> None:
    cur.execute("DELETE FROM export_lease WHERE name = %s AND holder = %s", (LEASE_NAME, holder))


def built_windows(cur: cursor, since: datetime) -> set[tuple[int, int]]:
    """(start, end) epochs of windows already written, ending after ``since``."""
    cur.execute(
        "SELECT DISTINCT extract(epoch FROM window_start)::bigint,"
        " extract(epoch FROM window_end)::bigint FROM export_files WHERE window_end > %s",
        (since,),
    )
    return {(int(row[0]), int(row[1])) for row in cur.fetchall()}


_EMBARGO_INTERVALS = EMBARGO_SECONDS // INTERVAL_SECONDS
_DAY_INTERVALS = DAY_SECONDS // INTERVAL_SECONDS
EXPORT_DAY = (
    "GREATEST((created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01',"
    f" floor((rolling_start_number::numeric + rolling_period + {_EMBARGO_INTERVALS})"
    f" / {_DAY_INTERVALS})::integer)"
)
"""The UTC day (days since the epoch) a key became available, ``max(created_at, embargo
end)``: the first column of ``exposures_export_day_idx`` (migration 0003), spelled exactly as
there so the planner matches it. The embargo end ``(rsn + rp) * 600 s + 2 h`` falls on day
``floor((rsn + rp + 12) / 144)``; numeric keeps any int32 start and period exact."""

PAGE_KEYS = 65_536
"""Keys per page of a window: 2 MiB of packed rows. Small enough that the pages in flight
cost little memory whatever a window holds, large enough that a page's round trip is noise."""

_PACKED_ROW = (
    "key_data || int2send(transmission_risk_level) || int4send(rolling_start_number)"
    " || int4send(rolling_period) || int2send(report_type)"
    " || int4send(coalesce(days_since_onset::integer, %(none)s))"
)

# One page: the next `limit` keys of the window after the cursor, in key order, packed and
# joined by PostgreSQL. The inner query is one index-only range scan of
# exposures_export_day_idx that returns rows already in key order (no sort) and reads no
# row it does not return, but for a delta's keys available later that day (the two
# filters; implied for a daily). string_agg takes its input in the subquery's order (the
# documented idiom for ordered input; an ORDER BY inside the aggregate would sort the page
# again on PostgreSQL 15); the byte-identity test against the key writer holds it to that.
# COPY BINARY hands the value over as raw bytes: a SELECT would send it hex-encoded, twice
# the bytes to encode, send and decode.
#
# The cursor (the last key of the previous page) never appears in the statement's text:
# PostgreSQL logs the text of a statement that fails or whose connection is cut (a killed
# job, a Lambda timeout), and a key there would be an exposure key in the database's log
# (DESIGN §8; psycopg2 binds parameters into the text). The statement keeps the cursor in
# a transaction-local setting instead: it reads it as its range's lower bound (a stable
# expression, so still an index bound) and sets it to its own last key, taken from the
# joined page; `packed_pages` clears it when a window's pages begin.
CURSOR_SETTING = "covidtracer.export_after"
_LAST_KEY = f"substring(page FROM length(page) - {PACKED_KEY.size - 1} FOR {KEY_LENGTH})"
_PAGE = (
    "COPY (SELECT page, set_config(%(cursor)s, encode("  # noqa: S608 - constants; mogrify binds
    f"{_LAST_KEY}, 'hex'), true) FROM (SELECT string_agg(packed, ''::bytea) AS page FROM ("
    f"SELECT {_PACKED_ROW} AS packed FROM exposures"
    f" WHERE {EXPORT_DAY} = %(day)s"
    " AND created_at < to_timestamp(%(end)s) AND rolling_start_number + rolling_period < %(high)s"
    " AND key_data > decode(current_setting(%(cursor)s), 'hex')"
    " ORDER BY key_data LIMIT %(limit)s) AS rows) AS joined)"
    " TO STDOUT WITH (FORMAT binary)"
)

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def packed_pages(cur: cursor, window: Window, page_keys: int = PAGE_KEYS) -> Iterator[bytes]:
    """Keys available in the window as `exportfile.PACKED_KEY` rows, in key order, in pages
    of at most ``page_keys`` rows (the last page may be shorter; an empty window yields none).

    Available = created before the window end and embargo over before it, and either
    created or released in it: ``available_at`` in ``[start, end)``. Windows lie within one
    UTC day (``model.plan_windows``); run the pages in one REPEATABLE READ
    transaction to read them from one snapshot (the cursor between pages lives in the
    transaction too). Raises ``ValueError`` for a window that spans days or a
    ``page_keys`` below 1.
    """
    day, offset = divmod(window.start, DAY_SECONDS)
    if offset or window.end > window.start + DAY_SECONDS or page_keys < 1:
        raise ValueError(f"not a window within one UTC day: {window} (page_keys {page_keys})")
    _, high = window.embargo_interval_bounds
    cur.execute(
        f"SET LOCAL work_mem = '{KEY_QUERY_WORK_MEM}'; SELECT set_config(%s, '', true)",
        (CURSOR_SETTING,),
    )
    params = {
        "day": day,
        "end": window.end,
        "high": high,
        "limit": page_keys,
        "none": NO_ONSET,
        "cursor": CURSOR_SETTING,
    }
    statement = cur.mogrify(_PAGE, params).decode()
    while True:
        page = _copy_value(cur, statement)
        if page:
            yield page
        if len(page) < page_keys * PACKED_KEY.size:
            return


def packed_keys(cur: cursor, window: Window) -> bytes:
    """All of `packed_pages` joined: for tests and small windows."""
    return b"".join(packed_pages(cur, window))


# A revised key (Google's /v1/publish, revision token) as its revised_keys record: its
# revised report type, days since onset and transmission risk. It is available when it was
# revised, or when its embargo ends if that is later; the few revised keys are read through
# the partial index on revised_at (migration 0007).
_REVISED = (
    "COPY (SELECT string_agg(packed, ''::bytea) FROM ("
    "SELECT key_data || int2send(coalesce(revised_transmission_risk, transmission_risk_level))"
    " || int4send(rolling_start_number) || int4send(rolling_period)"
    " || int2send(revised_report_type)"
    " || int4send(coalesce(revised_days_since_onset::integer, %(none)s)) AS packed"
    " FROM exposures WHERE revised_at IS NOT NULL AND revised_at < to_timestamp(%(end)s)"
    " AND GREATEST(revised_at, to_timestamp((rolling_start_number::bigint + rolling_period)"
    " * %(interval)s + %(embargo)s)) >= to_timestamp(%(start)s)"
    " AND rolling_start_number + rolling_period < %(high)s"
    " ORDER BY key_data) AS revised) TO STDOUT WITH (FORMAT binary)"
)


def any_revised_keys(cur: cursor) -> bool:
    """Whether any stored key was revised at all (the partial index answers): a run reads
    no window's revised keys when none was."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM exposures WHERE revised_at IS NOT NULL)")
    row = cur.fetchone()
    return bool(row and row[0])


def packed_revised_keys(cur: cursor, window: Window) -> bytes:
    """The keys revised in the window (and past their embargo), as `exportfile.PACKED_KEY`
    rows of their revised values, in key order: the file's revised_keys."""
    _, high = window.embargo_interval_bounds
    params = {"start": window.start, "end": window.end, "high": high, "none": NO_ONSET}
    embargo = {"interval": INTERVAL_SECONDS, "embargo": EMBARGO_SECONDS}
    # Only times and bounds: nothing secret goes into the statement text.
    return _copy_value(cur, cur.mogrify(_REVISED, {**params, **embargo}).decode())


def _copy_value(cur: cursor, statement: str) -> bytes:
    """The first value of a one-row ``COPY … TO STDOUT (FORMAT binary)``; ``b""`` for
    NULL."""
    buffer = io.BytesIO()
    cur.copy_expert(statement, buffer)
    data = buffer.getbuffer()
    if bytes(data[: len(_COPY_SIGNATURE)]) != _COPY_SIGNATURE:
        raise ValueError("not PostgreSQL binary COPY output")
    # signature, flags (int32), header extension length (int32) and extension; then the
    # row: field count (int16), value length (int32, -1 for NULL), value.
    position = len(_COPY_SIGNATURE) + 8 + int.from_bytes(data[15:19])
    length = int.from_bytes(data[position + 2 : position + 6], signed=True)
    start = position + 6
    return bytes(data[start : start + length]) if length > 0 else b""


_SAMPLE = (
    "SELECT extract(epoch FROM created_at)::bigint, rolling_start_number, rolling_period,"  # noqa: S608 - constants
    " transmission_risk_level, report_type, coalesce(days_since_onset::integer, %(none)s)"
    f" FROM exposures WHERE {EXPORT_DAY} = %(day)s AND key_data {{}} %(start)s"
    " ORDER BY key_data LIMIT %(limit)s"
)


def sample_keys(cur: cursor, day: int, start: bytes, limit: int) -> list[SampledKey]:
    """Up to ``limit`` keys that became available on ``day`` (days since the epoch), the
    first from ``start`` on in key order, wrapping around to the lowest: what
    ``padding`` shapes its fakes after (one index range scan each way)."""
    params = {"day": day, "start": start, "limit": limit, "none": NO_ONSET}
    cur.execute(_SAMPLE.format(">="), params)
    rows = cur.fetchall()
    if len(rows) < limit:
        cur.execute(_SAMPLE.format("<"), {**params, "limit": limit - len(rows)})
        rows += cur.fetchall()
    return [SampledKey.of(*(int(value) for value in row)) for row in rows]


def insert_files(cur: cursor, files: Sequence[NewFile], now: datetime) -> int:
    """Record written files; a file already recorded (a re-run) is left as it was."""
    added = 0
    for f in files:
        cur.execute(
            "INSERT INTO export_files (path, window_start, window_end, start_timestamp,"
            " end_timestamp, part, parts, batch_num, batch_size, key_count, kind, created_at)"
            " VALUES (%s, to_timestamp(%s), to_timestamp(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (
                f.path,
                f.window.start,
                f.window.end,
                f.start_timestamp,
                f.end_timestamp,
                f.part,
                f.parts,
                f.batch_num,
                f.batch_size,
                f.key_count,
                f.window.kind,
                now,
            ),
        )
        added += cur.rowcount
    return added


def all_files(cur: cursor) -> list[FileRecord]:
    cur.execute(
        "SELECT id, path, extract(epoch FROM window_start)::bigint,"
        " extract(epoch FROM window_end)::bigint, part FROM export_files ORDER BY id"
    )
    return [FileRecord(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in cur.fetchall()]


def current_files_after(cur: cursor, since: int, limit: int) -> list[tuple[int, str]]:
    """(id, path) of files after ``since`` that no later window of their day supersedes."""
    cur.execute(
        "SELECT f.id, f.path FROM export_files f WHERE f.id > %s AND NOT EXISTS ("
        " SELECT 1 FROM export_files g"
        " WHERE g.window_start = f.window_start AND g.window_end > f.window_end)"
        " ORDER BY f.id LIMIT %s",
        (since, limit),
    )
    return [(int(r[0]), r[1]) for r in cur.fetchall()]


def delete_files_ending_before(cur: cursor, cutoff: datetime) -> list[str]:
    cur.execute("DELETE FROM export_files WHERE window_end < %s RETURNING path", (cutoff,))
    return [r[0] for r in cur.fetchall()]


def files_ending_before(cur: cursor, cutoff: datetime) -> list[str]:
    cur.execute("SELECT path FROM export_files WHERE window_end < %s", (cutoff,))
    return [r[0] for r in cur.fetchall()]
