"""Fake keys that hide which keys of a day's export files are real (DESIGN §4, §8).

Every file of a UTC day (each cumulative delta, then the daily) holds the day's real keys
available before its window end and the day's *fake uploads'* keys available before it:
the fakes are uploads the server pretends to have received, by a fixed schedule, and their
keys become available by the same rule as real keys (uploaded, and the embargo over).

- What the observer sees: every file of the day, anonymously. Consecutive files share every
  key (a file holds its predecessor's keys, fake or real); each window brings new keys.
- Why it cannot tell real keys from fakes: the schedule of fake uploads is a function of a
  server secret and the day alone, never of the real uploads (their count, time, or keys),
  so no comparison of files separates them: a key present in a file stays in every later
  file of the day, whatever it is, and every window brings fake uploads whether or not real
  ones came. A fake upload is shaped as a phone's: one key per day of the last 14 whose
  days since onset count as infectious, one onset and report type per upload, a same-day key
  released by the embargo hours later as often as real uploads carry one; each key's
  rolling start, period and transmission risk copied from real keys of the previous days
  with the same days since onset. Key bytes come from SHAKE-256 under the secret.
- What it can still learn: the total of new keys per window (real and fake together), and
  so, within the spread of the fake uploads (``COVER_UPLOADS`` per window, their sizes),
  how many people reported in a window: upload times to the export window, never below it,
  as DESIGN §8 allows. A day's first file always holds at least ``PADDING_MINIMUM`` + a
  jitter of up to ``PADDING_JITTER`` fake keys (Google's rule, as a floor for every file), so
  a quiet day looks like a busy one. Fields follow the distribution of real keys of the 7
  days before; a shift of that distribution within a day shows fakes as the older style.
  With no real keys in those days the fakes take a built-in shape (``_DEFAULT_SAMPLE``).
- Deterministic: a re-run of a window computes the same fakes (the samples are of days
  before the fakes' day, which no upload changes any more), so the same export.bin. A
  change of the export window length takes effect cleanly at the next UTC midnight.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from covidtracer.enffiles.exportfile import KEY_LENGTH, NO_ONSET, PACKED_KEY
from covidtracer.enffiles.model import DAY_SECONDS, INTERVAL_SECONDS, Window, available_at

PADDING_MINIMUM = 1000
PADDING_JITTER = 100
"""Google's padding: a day's files hold at least 1000 plus 0-100 fake keys, so a file's
size does not tell how many people reported (DESIGN §4)."""

COVER_UPLOADS = (1, 3)
"""Fake uploads in every export window (inclusive bounds, uniform): never 0, so new keys
never mean that a real upload came; the spread is what hides the count of real ones."""

SAMPLE_DAYS = 7
SAMPLE_KEYS_PER_DAY = 64
"""How the fakes learn what real uploads look like: this many real keys of each of the
days before theirs (from a secret position in key order, so nobody can choose which)."""

KEY_DAYS = 14
"""A phone uploads at most the keys of the 14 days before the upload (and today's)."""

_INTERVALS_PER_DAY = DAY_SECONDS // INTERVAL_SECONDS
_DOMAIN = b"covidtracer.enf.export-padding.v2"
_DRAW = 8  # bytes per random integer: 2**64's modulo bias is negligible here


@dataclass(frozen=True, slots=True)
class SampledKey:
    """What a real key tells of real uploads (no key bytes): when it was uploaded and its
    fields. ``days_since_onset`` is ``exportfile.NO_ONSET`` when it has none."""

    created_day: int
    key_day: int
    start_offset: int
    rolling_period: int
    transmission_risk_level: int
    report_type: int
    days_since_onset: int

    @classmethod
    def of(
        cls, created_at: int, rolling_start_number: int, rolling_period: int, risk: int,
        report_type: int, days_since_onset: int,
    ) -> SampledKey:  # fmt: skip
        key_day, offset = divmod(rolling_start_number, _INTERVALS_PER_DAY)
        return cls(
            created_at // DAY_SECONDS, key_day, offset, rolling_period, risk, report_type,
            days_since_onset,
        )  # fmt: skip


def _default_sample() -> tuple[SampledKey, ...]:
    """The shape of fakes when no real key was uploaded in the days before theirs: confirmed
    cases uploading days -5..10 since onset (the shipped exposure configuration), onsets 1-8
    days before the upload, whole-day keys, transmission risk 0 (what the app sends)."""
    return tuple(
        SampledKey(0, key_day, 0, _INTERVALS_PER_DAY, 0, 1, key_day + onset_days)
        for onset_days in range(1, 9)
        for key_day in range(-KEY_DAYS, 0)
        if -5 <= key_day + onset_days <= 10
    )


_DEFAULT_SAMPLE = _default_sample()


Layout = tuple[tuple[int, tuple[SampledKey, ...]], ...]
"""An upload's past keys: (days before the upload, the real keys with that day's days since
onset), oldest first."""


@dataclass(frozen=True)
class _UploadShape:
    """What fake uploads copy, from a sample of real keys."""

    templates: tuple[SampledKey, ...]  # keys with an onset: each gives an upload's onset
    layouts: dict[int, Layout]  # days from onset to upload -> the upload's past keys
    by_onset: dict[int, tuple[SampledKey, ...]]  # days since onset -> keys
    same_day: tuple[SampledKey, ...]  # keys uploaded on their own day
    same_day_share: tuple[int, int]  # uploads with a same-day key: (numerator, denominator)

    @classmethod
    def of(cls, sample: Sequence[SampledKey]) -> _UploadShape:
        templates = tuple(k for k in sample if k.days_since_onset != NO_ONSET) or _DEFAULT_SAMPLE
        grouped: dict[int, list[SampledKey]] = {}
        for key in templates:
            grouped.setdefault(key.days_since_onset, []).append(key)
        by_onset = {dso: tuple(keys) for dso, keys in grouped.items()}
        layouts = {
            onset: tuple(
                (back, by_onset[onset - back])
                for back in range(KEY_DAYS, 0, -1)
                if onset - back in by_onset
            )
            for onset in {_onset(key) for key in templates}
        }
        same_day = tuple(k for k in templates if k.key_day == k.created_day)
        # Nearly every upload carries yesterday's key: same-day keys per yesterday's key is
        # the share of uploads that carry today's.
        yesterdays = sum(1 for k in templates if k.key_day == k.created_day - 1)
        share = (len(same_day), max(yesterdays, len(same_day), 1))
        return cls(templates, layouts, by_onset, same_day, share)


def _onset(key: SampledKey) -> int:
    """Days from the onset to the upload of ``key``'s upload."""
    return key.created_day - key.key_day + key.days_since_onset


_DEFAULT_SHAPE = _UploadShape.of(_DEFAULT_SAMPLE)
_BASE_UPLOADS_BEFORE_DEFAULT = 4 * PADDING_MINIMUM  # far more than a floor's worth


class _Draws:
    """One fake upload's randomness, SHAKE-256 of a secret seed, at fixed places: its head
    (same-day key or not, template), then a slot per day back (0: the same-day key), so any
    subset of its keys comes out the same whichever others are made."""

    _SLOT = _DRAW + KEY_LENGTH
    _HEAD = 2 * _DRAW

    def __init__(self, seed: bytes) -> None:
        self._bytes = hashlib.shake_256(seed).digest(self._HEAD + (KEY_DAYS + 1) * self._SLOT)

    def head(self, bound: int, which: int) -> int:
        return self._below(which * _DRAW, bound)

    def slot(self, back: int, bound: int) -> tuple[int, bytes]:
        at = self._HEAD + back * self._SLOT
        return self._below(at, bound), self._bytes[at + _DRAW : at + self._SLOT]

    def _below(self, at: int, bound: int) -> int:
        return int.from_bytes(self._bytes[at : at + _DRAW]) % bound


@dataclass(frozen=True, slots=True)
class _FakeKey:
    available: int  # epoch seconds, by the real keys' rule
    row: bytes  # exportfile.PACKED_KEY


@dataclass(frozen=True, slots=True)
class _FakeUpload:
    """One fake upload of a day: when, and from which template; ``ready`` caps how many of
    its keys from 2 or more days back it has (a phone that had the app for fewer days)."""

    n: int
    at: int
    template: SampledKey
    same_day: bool
    ready: int = KEY_DAYS


def _fake_upload(draws: _Draws, shape: _UploadShape, n: int, at: int) -> _FakeUpload:
    numerator, denominator = shape.same_day_share
    same_day = draws.head(denominator, 0) < numerator and bool(shape.same_day)
    return _FakeUpload(n, at, shape.templates[draws.head(len(shape.templates), 1)], same_day)


def _keys(
    upload: _FakeUpload, draws: _Draws, shape: _UploadShape, day: int, *, past: bool = True
) -> list[_FakeKey]:
    """The upload's keys (only its same-day key without ``past``): each with the fields of
    a real key with the same days since onset, the upload's report type."""
    onset = _onset(upload.template)
    report_type = upload.template.report_type
    keys = []
    if past:
        layout = shape.layouts[onset]
        recent = [back for back, _ in layout if back >= 2][-upload.ready :] if upload.ready else []
        oldest = recent[0] if recent else 1  # cut: the phone's oldest days
        first = day * _INTERVALS_PER_DAY
        for back, like in layout:
            if back > oldest:
                continue
            pick, key = draws.slot(back, len(like))
            source = like[pick]
            start = first - back * _INTERVALS_PER_DAY + source.start_offset
            period = source.rolling_period
            row = _pack(key, source.transmission_risk_level, start, period, report_type,
                        onset - back)  # fmt: skip
            keys.append(_FakeKey(available_at(start, period, upload.at), row))
    if upload.same_day and onset in shape.by_onset:
        # Today's key, as phones release it: whole, or cut at the upload.
        pick, key = draws.slot(0, len(shape.same_day))
        source = shape.same_day[pick]
        start = day * _INTERVALS_PER_DAY + source.start_offset
        period = source.rolling_period
        if source.start_offset + period < _INTERVALS_PER_DAY:
            period = max(1, upload.at // INTERVAL_SECONDS - start)
        row = _pack(key, source.transmission_risk_level, start, period, report_type, onset)
        keys.append(_FakeKey(available_at(start, period, upload.at), row))
    return keys


_pack = PACKED_KEY.pack


def _schedule(
    day_key: bytes, day: int, shape: _UploadShape, window_seconds: int
) -> list[tuple[_FakeUpload, _UploadShape]]:
    """Every fake upload of ``day``: at midnight, enough to give the day's files their floor
    (``PADDING_MINIMUM`` + a jitter of keys from 2 or more days back, available from the
    start; the last one cut to its most recent days); then ``COVER_UPLOADS`` in every export
    window, at times within it."""
    windows = DAY_SECONDS // window_seconds
    draws = hashlib.shake_256(day_key + b"/schedule").digest((1 + windows * 4) * _DRAW)
    at = iter(range(0, len(draws), _DRAW))

    def below(bound: int) -> int:
        offset = next(at)
        return int.from_bytes(draws[offset : offset + _DRAW]) % bound

    floor = PADDING_MINIMUM + below(PADDING_JITTER + 1)
    start = day * DAY_SECONDS
    uploads: list[tuple[_FakeUpload, _UploadShape]] = []
    count = 0
    while count < floor:
        n = len(uploads)
        if n == _BASE_UPLOADS_BEFORE_DEFAULT:
            shape = _DEFAULT_SHAPE  # the sample's uploads have no key ready at midnight
        upload = _fake_upload(_upload_draws(day_key, n), shape, n, start)
        ready = sum(1 for back, _ in shape.layouts[_onset(upload.template)] if back >= 2)
        ready = min(ready, floor - count)
        count += ready
        uploads.append((_FakeUpload(n, start, upload.template, upload.same_day, ready), shape))
    low, high = COVER_UPLOADS
    for window_start in range(start, start + DAY_SECONDS, window_seconds):
        for _ in range(low + below(high - low + 1)):
            n = len(uploads)
            moment = window_start + below(window_seconds)
            uploads.append((_fake_upload(_upload_draws(day_key, n), shape, n, moment), shape))
    return uploads


def _upload_draws(day_key: bytes, n: int) -> _Draws:
    return _Draws(day_key + b"/upload/" + n.to_bytes(4))


# ---------------------------------------------------------------------------- a run's plan


SampleReader = Callable[[int, bytes, int], list[SampledKey]]
"""``(day, start, limit)`` -> up to ``limit`` real keys available on ``day``, from ``start``
in key order, wrapping around (``db.sample_keys``)."""


@dataclass
class Padding:
    """The fake keys of an export run's windows (``plan``): per window, as packed rows in
    key order, merged into its real keys by ``merger``."""

    secret: bytes
    region: str
    window_seconds: int
    samples: dict[int, list[SampledKey]]
    _keys: dict[tuple[int, bool], list[_FakeKey]] = field(default_factory=dict)
    _schedules: dict[int, list[tuple[_FakeUpload, _UploadShape]]] = field(default_factory=dict)

    def rows(self, window: Window) -> list[bytes]:
        """The window's fake keys, in key order: those of its day's fake uploads, and the
        same-day keys of the day before's, that are available in ``[start, end)``."""
        day = window.start // DAY_SECONDS
        keys = self._day(day, past=True) + self._day(day - 1, past=False)
        # A run's windows come oldest first: the days before these are done with.
        for done in [d for d in self._keys if d[0] < day - 1]:
            del self._keys[done]
        for done_day in [d for d in self._schedules if d < day - 1]:
            del self._schedules[done_day]
        return sorted(k.row for k in keys if window.start <= k.available < window.end)

    def merger(self, window: Window) -> Merger:
        return Merger(self.rows(window))

    def _day(self, day: int, *, past: bool) -> list[_FakeKey]:
        """The keys of ``day``'s fake uploads (only their same-day keys without ``past``)."""
        if (day, past) not in self._keys:
            day_key = _day_key(self.secret, self.region, day)
            if day not in self._schedules:
                sample = [k for source in sample_days(day) for k in self.samples.get(source, [])]
                shape = _UploadShape.of(sample)
                self._schedules[day] = _schedule(day_key, day, shape, self.window_seconds)
            schedule = self._schedules[day]
            self._keys[(day, past)] = [
                key
                for upload, shape in schedule
                for key in _keys(upload, _upload_draws(day_key, upload.n), shape, day, past=past)
            ]
        return self._keys[(day, past)]


def sample_days(day: int) -> range:
    """The days whose real keys shape ``day``'s fake uploads: the ``SAMPLE_DAYS`` before it,
    which no upload changes any more once ``day`` has begun."""
    return range(day - SAMPLE_DAYS, day)


def plan(
    read_sample: SampleReader, secret: bytes, region: str, windows: Iterable[Window],
    window_seconds: int,
) -> Padding:  # fmt: skip
    """The fakes of ``windows``, with every sample they need read now (the run's pipeline
    then needs no database for them)."""
    days = {w.start // DAY_SECONDS for w in windows}
    sources = {s for day in days for upload_day in (day - 1, day)
               for s in sample_days(upload_day)}  # fmt: skip
    master = _master(secret)
    samples = {
        source: read_sample(source, _sample_start(master, region, source), SAMPLE_KEYS_PER_DAY)
        for source in sorted(sources)
    }
    return Padding(secret, region, window_seconds, samples)


def _master(secret: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN, hashlib.sha256).digest()


def _day_key(secret: bytes, region: str, day: int) -> bytes:
    """The day's seed: whoever knows it can regenerate the day's fakes, so it derives from
    the server secret, for this use alone."""
    return hmac.new(_master(secret), f"{region}/day/{day}".encode(), hashlib.sha256).digest()


def _sample_start(master: bytes, region: str, day: int) -> bytes:
    return hmac.new(master, f"{region}/sample/{day}".encode(), hashlib.sha256).digest()[:KEY_LENGTH]


class Merger:
    """Merges a window's fake rows (in key order) into its pages of real rows: segments
    ``(rows, fake)`` in key order, real rows as slices of the page (no copy)."""

    def __init__(self, fakes: list[bytes]) -> None:
        self._fakes = fakes
        self._next = 0

    def merged(self, page: bytes) -> Iterator[tuple[bytes | memoryview, bool]]:
        """``page``'s rows with the fakes that sort before its last key, in key order."""
        view, size = memoryview(page), PACKED_KEY.size
        count = len(page) // size
        if self._next == len(self._fakes) or not count:
            yield view, False
            return
        keys = _PageKeys(view, count)
        last = keys[count - 1]
        row = 0
        while self._next < len(self._fakes) and self._fakes[self._next][:KEY_LENGTH] < last:
            fake = self._fakes[self._next]
            at = bisect.bisect_left(keys, fake[:KEY_LENGTH], lo=row)
            if at > row:
                yield view[row * size : at * size], False
            yield fake, True
            row = at
            self._next += 1
        yield view[row * size :], False

    def rest(self) -> Iterator[tuple[bytes, bool]]:
        """The fakes after the window's last real key."""
        while self._next < len(self._fakes):
            yield self._fakes[self._next], True
            self._next += 1


class _PageKeys(Sequence[bytes]):
    """The keys of a page of packed rows, as a sequence for ``bisect``."""

    def __init__(self, view: memoryview, count: int) -> None:
        self._view, self._count = view, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        start = index * PACKED_KEY.size
        return bytes(self._view[start : start + KEY_LENGTH])


NO_PADDING = Merger([])
"""A merger with no fakes (padding off): pages pass through whole."""
