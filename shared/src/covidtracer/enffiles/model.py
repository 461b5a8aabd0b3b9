"""Which export files exist and which a phone needs: windows, embargo and discovery rules.

Pure rules (no I/O); times are UTC epoch seconds passed in.

Design (DESIGN §4 "Export", discovery targets):
- A key becomes *available* at ``max(created_at, embargo end)``, the embargo ending
  ``(rolling_start_number + rolling_period) × 600 s + 2 h`` after the epoch. Every file
  covers one UTC day: the keys available in ``[day start, window end)``.
- The day is cut at fixed boundaries, every export window (a stage setting,
  ``ENF_EXPORT_WINDOW_MINUTES``: 1 h by default, 1 min on the local stack). For the current
  day, the newest completed boundary gives a **delta** file covering the day *so far*
  (cumulative, not just the last window); the boundary at midnight gives the **daily** file
  of the finished day.
  A window is built once its end is ``settle_seconds`` in the past (a stage setting,
  ``ENF_EXPORT_SETTLE_SECONDS``: an upload that stamped ``created_at`` just before the
  boundary has committed by then), and never rebuilt.
- A file is *superseded* by a file of the same day with a later window end. Discovery
  (``GET /exposures?since=`` and Google's ``index.txt``) lists only current files:
  * a new device gets the daily of each finished day in the 14-day retention (≤ 14) plus the
    current day's latest delta (1): ≤ 15 files;
  * a device checking every 3 h sees at most the current files made since its last check:
    today's latest delta, and after midnight the daily of the finished day — ≤ 2 new files
    per check, whatever the window length (each delta supersedes the day's earlier ones).
  The price is bandwidth: a polling phone re-downloads the day's earlier keys in each
  delta (one file per check, each ≤ the day's keys). Phones de-duplicate keys; Apple
  caps how many files a phone may hand the OS each day, which is what the file counts bound.
- A window with more keys than fit in one file becomes several files by the split rule
  (``batching.split_batch``); they count as one "file" for the rules above only in the sense
  that they share a window — a 3-file day is 3 downloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INTERVAL_SECONDS = 600
"""A rolling interval: ENF key validity is counted in 10-minute intervals."""

EMBARGO_SECONDS = 2 * 3600
"""A key is published only 2 h after it stopped being valid on the phone (DESIGN §4), so a
key cannot be matched against the last minutes of its owner's contacts."""

DAY_SECONDS = 86_400
DELTA_SECONDS = 3600
"""Default delta window (``EnfExportSettings.window_minutes``): an upload is listed within a
window plus one run, and its upload time is hidden within the window, as Google's server
hides it within the hour."""

OBJECT_PREFIX = "exposures/"
INDEX_PATH = OBJECT_PREFIX + "index.txt"
_OBJECT_NAME = re.compile(r"[0-9]{10}-[0-9]{10}-[0-9]{5}\.zip")

DAILY = "daily"
DELTA = "delta"


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """The keys available in ``[start, end)``: one UTC day, or its beginning so far."""

    start: int
    end: int
    kind: str

    @property
    def embargo_interval_bounds(self) -> tuple[int, int]:
        """``rolling_start_number + rolling_period`` range whose embargo ends in the window.

        A key's embargo ends at ``(rsn + rp) × 600 + 2 h``; it ends in ``[start, end)`` iff
        ``rsn + rp`` is in ``[low, high)`` (window bounds are whole 10-minute intervals).
        """
        return (
            -(-(self.start - EMBARGO_SECONDS) // INTERVAL_SECONDS),
            -(-(self.end - EMBARGO_SECONDS) // INTERVAL_SECONDS),
        )


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One export file as the files table holds it."""

    id: int
    path: str
    window_start: int
    window_end: int
    part: int


def embargo_ends_at(rolling_start_number: int, rolling_period: int) -> int:
    return (rolling_start_number + rolling_period) * INTERVAL_SECONDS + EMBARGO_SECONDS


def available_at(rolling_start_number: int, rolling_period: int, created_at: int) -> int:
    """When a key may first be exported: uploaded, and its embargo over."""
    return max(created_at, embargo_ends_at(rolling_start_number, rolling_period))


def plan_windows(
    now: int, retention_days: int, delta_seconds: int = DELTA_SECONDS, *, settle_seconds: int
) -> list[Window]:
    """The windows a run at ``now`` should have built, oldest first.

    The daily of every finished UTC day that ends within the retention, and the current
    day's latest completed delta (none in its first window; ``delta_seconds`` divides a
    day); a window counts once its end is ``settle_seconds`` past. A run builds those not
    yet built.
    """
    cutoff = now - settle_seconds
    today = cutoff // DAY_SECONDS * DAY_SECONDS
    oldest_end = now - retention_days * DAY_SECONDS
    windows = [
        Window(day, day + DAY_SECONDS, DAILY)
        for day in range(today - retention_days * DAY_SECONDS, today, DAY_SECONDS)
        if day + DAY_SECONDS > oldest_end
    ]
    boundary = cutoff // delta_seconds * delta_seconds
    if boundary > today:
        windows.append(Window(today, boundary, DELTA))
    return windows


def object_path(window: Window, part: int) -> str:
    """Deterministic object key: a re-run of a window overwrites the same objects."""
    return f"{OBJECT_PREFIX}{window.start:010d}-{window.end:010d}-{part:05d}.zip"


def is_export_object(path: str) -> bool:
    """Whether ``path`` names an export zip (never anything else in the bucket)."""
    name = path[len(OBJECT_PREFIX) :]
    return path.startswith(OBJECT_PREFIX) and bool(_OBJECT_NAME.fullmatch(name))


def current_files(files: Iterable[FileRecord]) -> list[FileRecord]:
    """Files not superseded by a later window of the same day, oldest window first."""
    records = list(files)
    latest: dict[int, int] = {}
    for record in records:
        latest[record.window_start] = max(latest.get(record.window_start, 0), record.window_end)
    return sorted(
        (r for r in records if r.window_end == latest[r.window_start]),
        key=lambda r: (r.window_start, r.window_end, r.part),
    )


def index_text(files: Sequence[FileRecord]) -> str:
    """Google's index.txt: one object path per line, oldest first."""
    return "".join(f"{record.path}\n" for record in current_files(files))
