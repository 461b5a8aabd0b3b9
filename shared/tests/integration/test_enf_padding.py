"""Issue 20, item 1: the padding holds across every file a phone can download in a day.

The attacker downloads, anonymously, every delta of a day as it is published and then the
day's daily file, and compares them: keys common to consecutive files, keys new in each,
keys that disappear. Real uploads arrive all day in between (groups of a phone's daily keys,
same-day keys released by the embargo hours later, yesterday's keys at 02:00). The export
runs with padding on, against real PostgreSQL and moto's KMS and S3, at every window
boundary; the files are read back from S3 as a phone gets them.

What must hold (DESIGN §4, §8): no comparison isolates real keys, and the count of new keys
in a window is never the count of real ones; fakes look like real uploads in every field
and come in groups; Google's floor of 1000 + 0-100 keys per file; a re-run writes the same
export.bin.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from test_enf_export import _export, _exported, _padded, _secret

from covidtracer.enffiles.exportfile import ExportKey
from covidtracer.enfkeys.settings import EnfSettings
from tracerstack.exportreader import unzip_export

DAY = 86_400
TODAY = datetime(2021, 10, 14, tzinfo=UTC)  # the day the attacker watches
D = int(TODAY.timestamp()) // DAY
# When phones uploaded on that day: (hour, minute, onset days before the upload, with a
# same-day key): bursts, quiet hours, uploads just before boundaries.
UPLOADS = [
    (0, 20, 4, False), (0, 50, 6, True), (3, 10, 2, False), (3, 15, 5, True), (7, 40, 3, False),
    (12, 5, 7, True), (12, 30, 4, False), (12, 55, 2, False), (18, 0, 9, True),
    (23, 10, 3, False),
]  # fmt: skip
HISTORY_UPLOADS_PER_DAY = 3  # the days before: what "a real upload" looks like


@dataclass(frozen=True)
class Upload:
    at: datetime
    onset_days: int
    same_day_key: bool
    report_type: int = 1


def _rows(upload: Upload, rng: random.Random) -> list[tuple[Any, ...]]:
    """A phone's upload as the upload path stores it: a key per day of the last 14 whose
    days since onset the served configuration scores as infectious (-5..10), and, if the
    phone releases it, today's key so far (its period cut at the upload)."""
    day = int(upload.at.timestamp()) // DAY
    onset = day - upload.onset_days
    now_interval = int(upload.at.timestamp()) // 600
    rows = []
    for key_day in range(day - 14, day + (1 if upload.same_day_key else 0)):
        dso = key_day - onset
        if not -5 <= dso <= 10:
            continue
        start = key_day * 144
        period = 144 if key_day < day else max(1, now_interval - start)
        rows.append((rng.randbytes(16), start, period, 0, upload.report_type, dso, upload.at))
    return rows


def _insert(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
            " transmission_risk_level, report_type, days_since_onset, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _day_files(config: EnfSettings) -> dict[int, list[ExportKey]]:
    """The watched day's files as the attacker holds them: window end -> keys."""
    files: dict[int, list[ExportKey]] = {}
    for _body, (export, _signatures) in _exported(config).values():
        if export.start_timestamp == D * DAY:
            files[export.end_timestamp] = list(export.keys)
    return dict(sorted(files.items()))


def _run_the_day(config: EnfSettings) -> None:
    """An export run just after every boundary of the watched day (settled), the daily last."""
    settle = timedelta(seconds=config.export.settle_seconds + 5)
    for hour in range(1, 25):
        _export(config, TODAY + timedelta(hours=hour) + settle, padding_key=_secret)


def _watched_day(
    enf: EnfSettings, monkeypatch: pytest.MonkeyPatch
) -> tuple[EnfSettings, set[bytes]]:
    """Real uploads on the days before and all through the watched day; its files built."""
    config = _padded(enf, monkeypatch)
    rng = random.Random(20)
    history = [
        Upload(TODAY - timedelta(days=back, hours=-10 - n), 2 + (back + n) % 7, n % 2 == 0)
        for back in range(1, 8)
        for n in range(HISTORY_UPLOADS_PER_DAY)
    ]
    today = [Upload(TODAY + timedelta(hours=h, minutes=m), o, s) for h, m, o, s in UPLOADS]
    rows = [row for upload in history + today for row in _rows(upload, rng)]
    _insert(config.database.url or "", rows)
    _run_the_day(config)
    return config, {row[0] for row in rows}


def test_an_observer_of_a_days_files_cannot_tell_real_keys_from_fakes(
    enf: EnfSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, real = _watched_day(enf, monkeypatch)  # the day is built once: 24 export runs
    _check_no_comparison_isolates_real_keys(config, real)
    _check_fakes_look_like_real_uploads(config, real)
    _check_googles_floor(config, real)
    _check_a_rerun_writes_the_same_export_bin(config)


def _check_no_comparison_isolates_real_keys(config: EnfSettings, real: set[bytes]) -> None:
    files = _day_files(config)
    ends = list(files)
    assert len(ends) == 24, ends  # 23 deltas and the daily
    sets = {end: {k.key_data for k in keys} for end, keys in files.items()}
    _print_what_the_attacker_sees(sets, real)

    # No key disappears: each file holds every key of the day's earlier ones.
    for earlier, later in itertools.pairwise(ends):
        assert sets[earlier] <= sets[later], f"keys of {earlier} gone from {later}"

    # Whatever files the attacker intersects or subtracts, the keys fall into cells by the
    # files that hold them; no cell holds real keys alone.
    cells: dict[tuple[bool, ...], set[bytes]] = defaultdict(set)
    for key in set().union(*sets.values()):
        cells[tuple(key in sets[end] for end in ends)].add(key)
    for membership, keys in cells.items():
        assert not keys <= real, f"a cell of {len(keys)} real keys only: {membership}"

    # The count of new keys in a window is never the count of real uploads' keys: fake
    # uploads arrive in every window, whether or not real ones did.
    previous: set[bytes] = set()
    for end in ends:
        new = sets[end] - previous
        assert new - real, f"the keys new at {end} are all real"
        previous = sets[end]


def _print_what_the_attacker_sees(sets: dict[int, set[bytes]], real: set[bytes]) -> None:
    """Per file: keys, keys shared with the previous file (and how many of those are real),
    keys new in it (and how many are real); for the record (``pytest -s``)."""
    previous: set[bytes] = set()
    for end, keys in sets.items():
        shared, new = keys & previous, keys - previous
        print(
            f"{(end - D * DAY) // 3600:>2}h: {len(keys)} keys, {len(shared)} shared with the"
            f" previous file ({len(shared & real)} real), {len(new)} new ({len(new & real)} real)"
        )
        previous = keys


def _check_fakes_look_like_real_uploads(config: EnfSettings, real: set[bytes]) -> None:
    """In every field, and in groups as a phone uploads them."""
    daily = list(_day_files(config).values())[-1]
    fakes = [k for k in daily if k.key_data not in real]
    assert len(fakes) >= 1000
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT transmission_risk_level, report_type, rolling_start_number % 144,"
            " rolling_period, days_since_onset FROM exposures"
        )
        reals = cur.fetchall()

    def fields(key: ExportKey) -> tuple[int, int, int, int, int | None]:
        return (key.transmission_risk_level, key.report_type,
                key.rolling_start_interval_number % 144, key.rolling_period,
                key.days_since_onset)  # fmt: skip

    for column, name in enumerate(("risk", "report type", "start", "period", "onset")):
        seen = {row[column] for row in reals}
        if name == "period":  # a key released on its own day is cut at its upload
            assert any(start + period < 144 for _, _, start, period, _ in reals)
            seen |= {p for _, _, start, p, _ in map(fields, fakes) if start + p < 144}
        assert {fields(k)[column] for k in fakes} <= seen, name
    # A phone's upload: one key per day, days in a row, sharing the onset and report type.
    # Grouped that way, fakes make such runs (several uploads may share an onset).
    days_by_group: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for key in fakes:
        key_day = key.rolling_start_interval_number // 144
        assert D - 15 <= key_day <= D
        days_by_group[(key_day - (key.days_since_onset or 0), key.report_type)][key_day] += 1
    for group, days in days_by_group.items():
        assert sorted(days) == list(range(min(days), max(days) + 1)), group


def _check_googles_floor(config: EnfSettings, real: set[bytes]) -> None:
    """Every file at least 1000 keys; the day's first starts from 1000 + 0-100 fakes (and
    its window's fake uploads: at most 3 of at most 15 keys)."""
    files = _day_files(config)
    assert min(len(keys) for keys in files.values()) >= 1000
    first = next(iter(files.values()))
    assert 1000 <= len([k for k in first if k.key_data not in real]) <= 1100 + 3 * 15


def _check_a_rerun_writes_the_same_export_bin(config: EnfSettings) -> None:
    """Built again from scratch (the first delta, then the daily): byte for byte the same."""
    before = {path: unzip_export(body)[0] for path, (body, _) in _exported(config).items()}
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE export_files")
    settle = timedelta(seconds=config.export.settle_seconds + 5)
    for at in (TODAY + timedelta(hours=1) + settle, TODAY + timedelta(days=1) + settle):
        _export(config, at, padding_key=_secret)
    again = {path: unzip_export(body)[0] for path, (body, _) in _exported(config).items()}
    assert len(again) == 16 and again == {path: before[path] for path in again}


def test_an_empty_day_still_has_its_files_on_schedule(
    enf: EnfSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day without uploads publishes the same files as one with (fakes only): whether a
    file exists says nothing about whether anyone reported."""
    config = _padded(enf, monkeypatch)
    _export(config, TODAY + timedelta(hours=3, minutes=2), padding_key=_secret)
    files = _day_files(config)
    assert list(files) == [D * DAY + 3 * 3600]
    assert len(files[D * DAY + 3 * 3600]) >= 1000
