"""How keys are shaped into export files: the per-file split rule (fake keys: ``padding``)."""

from __future__ import annotations

from dataclasses import replace

from covidtracer.enffiles.exportfile import ExportBatch

MAX_KEYS_PER_FILE = 500_000
"""Google's per-file cap: phones must load a whole file at once, and 500,000 keys keep a
file near 15 MB (DESIGN §4)."""


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
