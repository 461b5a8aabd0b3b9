"""How keys are shaped into export files: the per-file split rule and fake-key padding."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from covidtracer.enffiles.exportfile import KEY_LENGTH, ExportBatch, ExportKey

MAX_KEYS_PER_FILE = 500_000
"""Google's per-file cap: phones must load a whole file at once, and 500,000 keys keep a
file near 15 MB (DESIGN §4)."""

PADDING_MINIMUM = 1000
PADDING_JITTER = 100
"""Google's padding: a small file is filled with fake keys up to 1000 plus 0-100 more, so a
file's size does not tell how many people reported in that window (DESIGN §4)."""

_PADDING_DOMAIN = b"covidtracer.enf.pad_keys.v1\x00"
_PADDING_DRAW = 8  # bytes per random integer; the modulo bias of 2**64 is negligible here


def split_batch(batch: ExportBatch, max_per_file: int = MAX_KEYS_PER_FILE) -> list[ExportBatch]:
    """One batch per export file: at most `max_per_file` keys each.

    The rule (DESIGN §4, as Google's server does it):
    - keys are cut into consecutive chunks of `max_per_file` in the order given, the last
      chunk taking the rest; each file sorts its own chunk when encoded;
    - every file is its own batch: batch_num = batch_size = 1, so a phone never has to
      collect several files before handing them to the OS;
    - when there is more than one file, file n (counting from 1) gets `end_timestamp + n`.
      Android de-duplicates files by their start/end/batch fields; with all batches 1 of 1,
      files of one window would otherwise look identical and all but the first be skipped.
      A single file keeps its end_timestamp.
    - no keys, no files: an empty batch gives an empty list.

    Raises `ValueError` if `max_per_file` is below 1.
    """
    keys = batch.keys
    return [
        replace(
            batch,
            end_timestamp=batch.end_timestamp + bump,
            batch_num=1,
            batch_size=1,
            keys=keys[chunk],
        )
        for chunk, bump in file_chunks(len(keys), max_per_file)
    ]


def file_chunks(count: int, max_per_file: int = MAX_KEYS_PER_FILE) -> list[tuple[slice, int]]:
    """`split_batch`'s rule for `count` keys: (the file's keys, its end_timestamp bump) per file.

    For callers holding keys in another form than an `ExportBatch` (the export run's packed
    rows). Raises `ValueError` if `max_per_file` is below 1.
    """
    if max_per_file < 1:
        raise ValueError(f"max_per_file must be at least 1, got {max_per_file}")
    if count <= max_per_file:
        return [(slice(0, count), 0)] if count else []
    return [
        (slice(offset, offset + max_per_file), file_number)
        for file_number, offset in enumerate(range(0, count, max_per_file), start=1)
    ]


def pad_keys(
    keys: Sequence[ExportKey],
    *,
    seed: bytes,
    minimum: int = PADDING_MINIMUM,
    jitter: int = PADDING_JITTER,
) -> tuple[ExportKey, ...]:
    """`keys` plus fake keys up to `minimum` + a jitter in [0, jitter]; deterministic in `seed`.

    Each fake key has random key bytes and copies every other field from a real key picked
    at random, so timing and report fields look like the file's real ones. An empty file
    stays empty (there is nothing to imitate), as does one already at or above the target.

    All randomness is SHAKE-256 of `seed`, so a re-run with the same keys and seed writes
    the same export.bin. The seed must be secret and differ per file: whoever knows it can
    regenerate the fakes and count the real keys, which is what padding hides. Derive it,
    e.g., as HMAC-SHA256(server secret, region/start/end/file number).

    Raises `ValueError` if `minimum` or `jitter` is negative.
    """
    if minimum < 0 or jitter < 0:
        raise ValueError(f"minimum and jitter must not be negative, got {minimum}, {jitter}")
    stream = hashlib.shake_256(_PADDING_DOMAIN + seed)
    target = minimum + int.from_bytes(stream.digest(_PADDING_DRAW)) % (jitter + 1)
    if not keys or len(keys) >= target:
        return tuple(keys)
    count = target - len(keys)
    draw = KEY_LENGTH + _PADDING_DRAW
    # SHAKE output is a prefix-stable stream: skip the bytes the jitter already used.
    material = stream.digest(_PADDING_DRAW + count * draw)[_PADDING_DRAW:]
    fakes = []
    for start in range(0, count * draw, draw):
        source = keys[int.from_bytes(material[start + KEY_LENGTH : start + draw]) % len(keys)]
        fakes.append(source._replace(key_data=material[start : start + KEY_LENGTH]))
    return (*keys, *fakes)
