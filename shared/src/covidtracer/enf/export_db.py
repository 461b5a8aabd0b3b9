"""The export job's SQL: the lease, the key query and the files table (DESIGN §4 "Export").

Each function runs on the caller's cursor; the job uses a connection of its own (it is a
batch that must not share the request connection, and concurrent runs need their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from covidtracer.enf.export_model import FileRecord, Window
from covidtracer.enf.exportfile import NO_ONSET

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

LEASE_NAME = "enf-export"

KEY_QUERY_WORK_MEM = "64MB"
"""``work_mem`` for the key query's transaction: a day's ~100,000+ rows sort in memory
instead of spilling to disk (default 4 MB); halves the query time at 1.4 M keys with the
rows in upload order (bench/enf_export.py). One job runs at a time, so one such sort."""


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


def packed_keys(cur: cursor, window: Window) -> bytes:
    """Keys available in the window as `exportfile.PACKED_KEY` rows joined, in key order.

    Available = created before the window end and embargo over before it, and either
    created or released in it. PostgreSQL packs and sorts (``bytea`` orders bytewise, as
    Python's ``bytes`` do): one value per window instead of a Python row per key.
    """
    low, high = window.embargo_interval_bounds
    cur.execute(f"SET LOCAL work_mem = '{KEY_QUERY_WORK_MEM}'")
    cur.execute(
        "SELECT string_agg(key_data || int2send(transmission_risk_level)"
        " || int4send(rolling_start_number) || int4send(rolling_period)"
        " || int2send(report_type) || int4send(coalesce(days_since_onset::integer, %(none)s)),"
        " ''::bytea ORDER BY key_data)"
        " FROM exposures"
        " WHERE created_at < to_timestamp(%(end)s)"
        " AND rolling_start_number + rolling_period < %(high)s"
        " AND (created_at >= to_timestamp(%(start)s)"
        "      OR rolling_start_number + rolling_period >= %(low)s)",
        {"start": window.start, "end": window.end, "low": low, "high": high, "none": NO_ONSET},
    )
    row = cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


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
