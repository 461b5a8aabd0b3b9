"""The export job against real PostgreSQL, moto KMS and moto S3."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from covidtracer import aws, settings
from covidtracer.enffiles import model
from covidtracer.enffiles import service as export_service
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enffiles.exportfile import (
    PACKED_KEY,
    ExportBatch,
    ExportKey,
    ReportType,
    encode_export_bin,
    encode_packed_export_bin,
)
from covidtracer.enffiles.kms import KmsSigner
from covidtracer.enffiles.signing import verify_signature
from covidtracer.enffiles.store import S3FileStore
from covidtracer.enfkeys import schema
from covidtracer.enfkeys.settings import EnfSettings, enf_settings
from tracerstack.exportreader import read_export_zip, unzip_export

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)
DAY = 86_400


@pytest.fixture
def aws_role() -> str:
    """The export ships in the ENF service: it signs (KMS), writes (S3) and reports
    (CloudWatch) as the ENF execution role."""
    return "enf"


def _signer(config: EnfSettings) -> KmsSigner:
    return KmsSigner(config.export_signing_key_id, config.export.kms_message_type)


def _store(config: EnfSettings) -> S3FileStore:
    return S3FileStore(config.exports_bucket)


def _export(
    config: EnfSettings,
    now: datetime,
    *,
    padding_key: Callable[[], bytes] | None = None,
    **run: Any,
) -> export_service.ExportResult:
    """One export run with the stage's adapters (KMS and S3 in moto) and ``padding_key``."""
    deps = replace(files_wiring.deps_for(config), padding_key=padding_key)
    return export_service.export_keys(deps, export_service.ExportRun(**run), now)


def _insert(dsn: str, rows: list[tuple[bytes, int, int, datetime]]) -> None:
    """Keys as (key, rolling_start_number, rolling_period, created_at)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for key, rsn, period, created in rows:
            cur.execute(
                "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
                " transmission_risk_level, report_type, days_since_onset, created_at)"
                " VALUES (%s, %s, %s, 4, 1, 2, %s)",
                (key, rsn, period, created),
            )


def _key(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _day_rsn(at: datetime, days_back: int) -> int:
    return int(at.timestamp()) // DAY * 144 - days_back * 144


def _exported(config: EnfSettings) -> dict[str, Any]:
    """Every listed file's parsed content, by path."""
    s3 = aws.s3()
    out = {}
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT path FROM export_files ORDER BY id")
        paths = [r[0] for r in cur.fetchall()]
    for path in paths:
        body = s3.get_object(Bucket=config.exports_bucket, Key=path)["Body"].read()
        out[path] = (body, read_export_zip(body))
    return out


def _current_keys(config: EnfSettings) -> list[bytes]:
    """Keys in the files discovery lists (what a new device downloads)."""
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        rows = export_service.sql.current_files_after(cur, 0, 1000)
    s3 = aws.s3()
    keys: list[bytes] = []
    for _, path in rows:
        body = s3.get_object(Bucket=config.exports_bucket, Key=path)["Body"].read()
        keys.extend(k.key_data for k in read_export_zip(body)[0].keys)
    return keys


def test_files_parse_and_their_signature_verifies_with_the_kms_public_key(enf: EnfSettings) -> None:
    created = NOW - timedelta(days=2)
    _insert(
        enf.database.url or "", [(_key(i), _day_rsn(created, 1), 144, created) for i in range(5)]
    )
    result = _export(enf, NOW)
    assert result.files == 1 and result.keys == 5
    public_pem = _signer(enf).public_key_pem()
    ((body, (export, signatures)),) = _exported(enf).values()
    assert [k.key_data for k in export.keys] == [_key(i) for i in range(5)]
    assert export.region == "NZ" and export.batch_num == 1 and export.batch_size == 1
    assert export.keys[0].report_type == ReportType.CONFIRMED_TEST
    assert export.keys[0].transmission_risk_level == 4
    assert export.signature_infos[0].verification_key_id == "530"
    assert export.signature_infos[0].verification_key_version == "v1"
    day = int(created.timestamp()) // DAY * DAY
    assert (export.start_timestamp, export.end_timestamp) == (day, day + DAY)
    (signature,) = signatures
    export_bin, _ = unzip_export(body)
    assert verify_signature(export_bin, signature.signature, public_pem)
    assert not verify_signature(export_bin + b"x", signature.signature, public_pem)
    index = aws.s3().get_object(Bucket=enf.exports_bucket, Key=model.INDEX_PATH)["Body"].read()
    assert index.decode().splitlines() == list(_exported(enf))


def test_keys_under_embargo_wait_for_a_later_run(enf: EnfSettings) -> None:
    # Valid until 12:00 today: embargo until 14:00, after NOW (13:30).
    today_rsn = int(NOW.timestamp()) // DAY * 144
    _insert(
        enf.database.url or "",
        [
            (_key(1), today_rsn, 72, NOW - timedelta(hours=4)),  # embargo ends 14:00
            (_key(2), today_rsn - 144, 144, NOW - timedelta(hours=4)),  # ended at midnight
        ],
    )
    _export(enf, NOW)
    assert _current_keys(enf) == [_key(2)]
    later = NOW + timedelta(hours=3)  # 16:30: the 15:00 delta holds both
    _export(enf, later)
    assert sorted(_current_keys(enf)) == [_key(1), _key(2)]


def test_concurrent_runs_export_each_key_once_and_a_rerun_adds_nothing(enf: EnfSettings) -> None:
    rows = [
        (_key(i), _day_rsn(NOW, 1 + i % 10), 144, NOW - timedelta(days=1 + i % 10))
        for i in range(300)
    ]
    _insert(enf.database.url or "", rows)
    results: list[Any] = []

    def run() -> None:
        results.append(_export(enf, NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.keys for r in results) == 300
    keys = _current_keys(enf)
    assert sorted(keys) == sorted(r[0] for r in rows)
    before = _exported(enf)
    again = _export(enf, NOW)
    assert (again.skipped, again.files) == (False, 0)
    assert list(_exported(enf)) == list(before)


def test_a_held_lease_skips_the_run_and_an_expired_one_does_not(enf: EnfSettings) -> None:
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO export_lease VALUES ('enf-export', 'crashed', %s)",
            (NOW + timedelta(minutes=1),),
        )
    assert _export(enf, NOW).skipped
    later = NOW + timedelta(minutes=2)
    assert not _export(enf, later).skipped


def test_a_window_over_the_file_cap_splits_with_bumped_end_timestamps(enf: EnfSettings) -> None:
    created = NOW - timedelta(days=1)
    _insert(
        enf.database.url or "", [(_key(i), _day_rsn(created, 1), 144, created) for i in range(25)]
    )
    result = _export(enf, NOW, max_per_file=10)
    assert (result.files, result.keys) == (3, 25)
    files = [parsed[0] for _, parsed in _exported(enf).values()]
    day_end = int(created.timestamp()) // DAY * DAY + DAY
    assert [f.end_timestamp for f in files] == [day_end + 1, day_end + 2, day_end + 3]
    assert [len(f.keys) for f in files] == [10, 10, 5]
    assert sorted(k.key_data for f in files for k in f.keys) == [_key(i) for i in range(25)]


@pytest.mark.parametrize(
    ("count", "page_keys", "sizes", "bumps"),
    [
        (10, 3, [10], [0]),  # exactly the cap: one file, end_timestamp as it is
        (11, 3, [10, 1], [1, 2]),  # one key over: the split is known only at key 11
        (30, 7, [10, 10, 10], [1, 2, 3]),
        (25, 10, [10, 10, 5], [1, 2, 3]),  # pages and files on the same boundary
        (23, 100, [10, 10, 3], [1, 2, 3]),  # one page holding several files
    ],
)
def test_pages_of_any_size_cut_files_exactly_as_the_split_rule(
    enf: EnfSettings, count: int, page_keys: int, sizes: list[int], bumps: list[int]
) -> None:
    created = NOW - timedelta(days=1)
    rng = random.Random(count)
    keys = [rng.randbytes(16) for _ in range(count)]
    _insert(enf.database.url or "", [(k, _day_rsn(created, 1), 144, created) for k in keys])
    result = _export(enf, NOW, max_per_file=10, page_keys=page_keys)
    assert (result.files, result.keys) == (len(sizes), count)
    files = [parsed[0] for _, parsed in _exported(enf).values()]
    day_end = int(created.timestamp()) // DAY * DAY + DAY
    assert [f.end_timestamp - day_end for f in files] == bumps
    assert [len(f.keys) for f in files] == sizes
    assert [k.key_data for f in files for k in f.keys] == sorted(keys)


def _padded(enf: EnfSettings, monkeypatch: pytest.MonkeyPatch) -> EnfSettings:
    monkeypatch.setenv("ENF_EXPORT_PAD_FILES", "true")
    settings.reset()
    return enf_settings()


def _secret() -> bytes:
    return b"server secret"


def _day_file(config: EnfSettings, day: int) -> tuple[bytes, Any]:
    """The one file of the day starting at ``day`` (epoch): (zip, parsed)."""
    (found,) = [v for v in _exported(config).values() if v[1][0].start_timestamp == day]
    return found


def test_a_small_file_is_padded_with_fakes_that_a_rerun_repeats(
    enf: EnfSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _padded(enf, monkeypatch)
    created = NOW - timedelta(days=1)
    real = [_key(i) for i in range(5)]
    _insert(enf.database.url or "", [(k, _day_rsn(created, 1), 144, created) for k in real])
    result = _export(config, NOW, padding_key=_secret)
    # Every window has its day's fakes, real keys or none (14 dailies and today's delta);
    # the real keys are what the run reports.
    assert (result.files, result.keys) == (15, 5)
    day = int(created.timestamp()) // DAY * DAY
    body, (export, signatures) = _day_file(config, day)
    data = [k.key_data for k in export.keys]
    assert set(real) <= set(data) and data == sorted(data)
    fakes = [k for k in export.keys if k.key_data not in real]
    # Google's 1000 + 0-100 from the day's start, and the fake uploads of every window.
    assert 1000 <= len(fakes) <= 1100 + 24 * 3 * 15
    # No real key in the days before: fakes take the built-in shape of a phone's upload.
    assert {(k.rolling_start_interval_number % 144, k.rolling_period, k.report_type,
             k.transmission_risk_level) for k in fakes} == {(0, 144, 1, 0)}  # fmt: skip
    export_bin, _ = unzip_export(body)
    assert verify_signature(export_bin, signatures[0].signature, _signer(config).public_key_pem())

    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE export_files")
    _export(config, NOW, padding_key=_secret)
    again, _ = _day_file(config, day)
    assert unzip_export(again)[0] == export_bin


def test_padding_needs_a_secret_and_a_file_over_its_target_keeps_every_key(
    enf: EnfSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over Google's target still holds its day's fakes: a day's files keep every
    key of its earlier ones, and an earlier file of a day that grew held fakes."""
    config = _padded(enf, monkeypatch)
    with pytest.raises(ValueError, match="padding_key"):
        _export(config, NOW)
    created = NOW - timedelta(days=1)
    keys = [_key(i) for i in range(1101)]
    _insert(enf.database.url or "", [(k, _day_rsn(created, 1), 144, created) for k in keys])
    _export(config, NOW, padding_key=_secret)
    _, (export, _) = _day_file(config, int(created.timestamp()) // DAY * DAY)
    data = [k.key_data for k in export.keys]
    assert [k for k in data if k in set(keys)] == keys and data == sorted(data)
    assert len(data) - len(keys) >= 1000


def test_a_page_is_an_index_range_scan_in_key_order_without_a_sort(enf: EnfSettings) -> None:
    """The day expression matches the index's (migration 0003) exactly; with scans that
    would read other rows disabled, the planner still answers from the index, unsorted."""
    window = model.Window(
        int(NOW.timestamp()) // DAY * DAY - DAY, int(NOW.timestamp()) // DAY * DAY, model.DAILY
    )
    cursor_setting = export_service.sql.CURSOR_SETTING
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
        cur.execute("SELECT set_config(%s, '', true)", (cursor_setting,))
        statement = export_service.sql._PAGE.split("COPY (", 1)[1].rsplit(") TO STDOUT", 1)[0]
        _, high = window.embargo_interval_bounds
        cur.execute(
            "EXPLAIN (FORMAT JSON) " + statement,
            {"day": window.start // DAY, "end": window.end, "high": high,
             "cursor": cursor_setting, "limit": 10, "none": 0},
        )  # fmt: skip
        plan = json.dumps(cur.fetchone()[0])
    assert "exposures_export_day_idx" in plan and "Index Only Scan" in plan
    assert '"Sort"' not in plan and "Seq Scan" not in plan
    # The cursor bounds the range scan (a page starts where the last one ended), not a filter
    # over the day's keys from the first.
    (index_cond,) = re.findall(r'"Index Cond": "([^"]*)"', plan)
    assert "key_data >" in index_cond


def test_the_query_spells_the_export_day_as_the_migration_indexes_it() -> None:
    migration = (schema.MIGRATIONS / "0003_export_day_index.up.sql").read_text()
    assert export_service.sql.EXPORT_DAY in " ".join(migration.split())


def test_a_new_device_needs_at_most_15_files_for_14_days(enf: EnfSettings) -> None:
    rows = []
    for day in range(16):
        created = NOW - timedelta(days=day, hours=1)
        rows += [(_key(day * 100 + i), _day_rsn(created, 1), 144, created) for i in range(3)]
    _insert(enf.database.url or "", rows)
    for hours in range(0, 24, 3):
        _export(enf, NOW + timedelta(hours=hours))
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        listed = export_service.sql.current_files_after(cur, 0, 1000)
    assert len(listed) <= 15


def test_cleanup_deletes_files_past_retention_with_their_objects(enf: EnfSettings) -> None:
    created = NOW - timedelta(days=2)
    _insert(enf.database.url or "", [(_key(1), _day_rsn(created, 1), 144, created)])
    _export(enf, NOW)
    (path,) = _exported(enf)
    assert (
        export_service.cleanup_files(files_wiring.deps_for(enf), 14, NOW + timedelta(days=12)) == 0
    )
    assert (
        export_service.cleanup_files(files_wiring.deps_for(enf), 14, NOW + timedelta(days=15)) == 1
    )
    assert _exported(enf) == {}
    listed = aws.s3().list_objects_v2(Bucket=enf.exports_bucket, Prefix="exposures/")
    assert path not in [o["Key"] for o in listed["Contents"]]
    index = aws.s3().get_object(Bucket=enf.exports_bucket, Key=model.INDEX_PATH)["Body"].read()
    assert path not in index.decode()


def test_packed_rows_from_postgresql_encode_exactly_as_the_key_writer(enf: EnfSettings) -> None:
    """The query's packing (int2send/int4send, NULL onset) over the columns' whole ranges."""
    rng = random.Random(7)
    created = NOW - timedelta(days=1)
    day = int(created.timestamp()) // DAY * DAY
    window = model.Window(day, day + DAY, model.DAILY)  # every key's embargo ended long ago
    keys = []
    for n in range(400):
        start = rng.choice([-(2**31), -1, 0, 127, 128, 2**21, 2**31 - 1, rng.randrange(2**31)])
        # Any int32 period whose embargo (start + period, no overflow) ended in the past.
        periods = [144, 1, 0, -1, -(2**31), 2**31 - 1, -start, 144 - start, -(2**31) - start]
        period = rng.choice(
            [p for p in periods if -(2**31) <= p < 2**31 and -(2**31) <= start + p <= 144]
        )
        keys.append(
            ExportKey(
                rng.randbytes(15) + bytes([n % 256]),
                rng.choice([-(2**15), -1, 0, 8, 127, 128, 2**15 - 1]),
                start,
                period,
                rng.choice(list(ReportType)),
                rng.choice([None, -(2**15), -65, -64, -1, 0, 63, 64, 2**15 - 1]),
            )
        )
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO exposures (key_data, transmission_risk_level, rolling_start_number,"
            " rolling_period, report_type, days_since_onset, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(*key, created) for key in keys],
        )
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        packed = export_service.sql.packed_keys(cur, window)

    batch = ExportBatch(window.start, window.end, "NZ", 1, 1, (), tuple(keys))
    assert len(packed) == len(keys) * PACKED_KEY.size
    assert encode_packed_export_bin(replace(batch, keys=()), packed) == encode_export_bin(batch)


@pytest.mark.parametrize(("window_minutes", "run_minutes"), [(1, 1), (60, 5)])
def test_an_upload_is_listed_within_the_window_plus_one_run(
    enf: EnfSettings, window_minutes: int, run_minutes: int
) -> None:
    """The local stage (1-minute windows, a run a minute) and the default (1 hour, every 5
    minutes): a key whose embargo is over is listed once its window has closed, settled,
    and the next run has passed."""
    enf = replace(enf, export=replace(enf.export, window_minutes=window_minutes))
    uploaded = NOW + timedelta(seconds=20)
    _insert(enf.database.url or "", [(_key(7), _day_rsn(uploaded, 2), 144, uploaded)])
    at = NOW
    while _key(7) not in _current_keys(enf):
        at += timedelta(minutes=run_minutes)
        _export(enf, at)
    bound = timedelta(minutes=window_minutes + run_minutes, seconds=enf.export.settle_seconds)
    assert at - uploaded <= bound


@pytest.mark.parametrize("window_minutes", [180, 60])
def test_a_device_checking_every_3_hours_gets_at_most_2_new_files_per_check(
    enf: EnfSettings, window_minutes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export runs every 5 min over 30 h of steady uploads; devices poll ``GET /exposures``.

    Devices check every 3 h at phases around the boundaries (01:00, 03:00, …) and the runs
    after them; one device's checks drift (3 h 10 min, then 2 h 50 min), so its check at
    03:10 spans the midnight daily and the 03:00 delta: the 2-file case. The bounds hold for
    3-hour windows and for the 1-hour default (the export window is a stage setting).
    """
    enf = replace(enf, export=replace(enf.export, window_minutes=window_minutes))
    # 360 runs: what they publish is the point, not their analytics events or the
    # completion metric (both are tested on their own), which would cost moto calls each.
    monkeypatch.setenv("ANALYTICS_EVENTS", "false")
    settings.reset()
    start = datetime(2021, 10, 13, 22, 0, tzinfo=UTC)
    end = start + timedelta(hours=30)
    rows = [(_key(n), _day_rsn(start, 2), 144, start - timedelta(days=1)) for n in range(3)]
    for n in range(int((end - start) / timedelta(minutes=20))):
        created = start + timedelta(minutes=20 * n + 7)
        rows.append((_key(10_000 + n), _day_rsn(created, 1), 144, created))  # yesterday's key
        rows.append((_key(20_000 + n), _day_rsn(created, 0), 72, created))  # embargo to 14:00
    _insert(enf.database.url or "", rows)
    deps = files_wiring.deps_for(enf)
    unmeasured = replace(deps, padding_key=None, completed=lambda stage, files, keys: None)

    def listed_after(since: int, at: datetime) -> list[int]:
        files = export_service.list_files(deps, {"since": str(since)}, at)
        return [f["id"] for f in files]

    three_hours = (timedelta(hours=3),)
    devices = [(start + timedelta(minutes=m), three_hours) for m in (0, 1, 4, 6, 59, 62, 179)]
    devices.append((start + timedelta(hours=2), (timedelta(minutes=190), timedelta(minutes=170))))
    next_check = [first for first, _ in devices]
    since: list[int | None] = [None] * len(devices)  # None: a new device (at most 15 files)
    new_per_check: list[list[int]] = [[] for _ in devices]
    at = start
    while at <= end:
        export_service.export_keys(unmeasured, export_service.ExportRun(), at)
        for d, (_, steps) in enumerate(devices):
            while next_check[d] < at + timedelta(minutes=5):
                last = since[d]
                ids = listed_after(last or 0, next_check[d])
                if last is None:
                    assert 0 < len(ids) <= 15
                else:
                    new_per_check[d].append(len(ids))
                since[d] = max([last or 0, *ids])
                next_check[d] += steps[len(new_per_check[d]) % len(steps)]
        at += timedelta(minutes=5)

    checks = [n for device in new_per_check for n in device]
    assert len(checks) >= 8 * 8
    assert max(checks) <= 2
    if window_minutes == 180:
        assert new_per_check[-1][:2] == [2, 0]  # 03:10 daily + delta; 06:00 nothing new yet
    else:
        assert new_per_check[-1][:2] == [2, 1]  # 03:10 daily + delta; 06:00 the 05:00 delta
    assert checks.count(0) < len(checks) / 4  # a check mostly finds the boundary it passed
