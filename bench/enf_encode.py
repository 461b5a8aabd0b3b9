"""Benchmark: encoding ENF export files (export.bin, signature, zip) for 500,000 keys.

Target (DESIGN §7): 1.4 M keys already in PostgreSQL -> signed files in S3 in <= 8 s on
2 cores, end to end. This measures only the pure part (build key records, encode, sign,
zip) so its share of the budget is visible; DB reads and S3 writes are measured elsewhere.

    PYTHONPATH=shared/src python bench/enf_encode.py [--keys 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from covidtracer.enffiles.exportfile import (
    ExportBatch,
    ExportKey,
    ReportType,
    SignatureInfo,
    build_zip,
    encode_export_bin,
    encode_signature_list,
)
from covidtracer.enffiles.signing import PemSigner

TARGET_KEYS = 1_400_000
TARGET_SECONDS = 8.0


def realistic_rows(count: int, seed: int = 7) -> list[tuple[bytes, int, int, int, int, int]]:
    """Rows as the DB would return them: 14 days of keys starting on day boundaries, mostly
    full-day periods, confirmed tests, onset -14..14; sorted by key (ORDER BY key_data)."""
    rng = random.Random(seed)
    first_day = 2_650_000 // 144
    rows = []
    for _ in range(count):
        start = (first_day + rng.randrange(14)) * 144
        period = 144 if rng.random() < 0.93 else rng.randrange(1, 144)
        rows.append(
            (
                rng.randbytes(16),
                rng.randrange(9),
                start,
                period,
                int(ReportType.CONFIRMED_TEST),
                rng.randrange(-14, 15),
            )
        )
    rows.sort()
    return rows


def best_of[T](repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def report(label: str, seconds: float, keys: int) -> None:
    rate = keys / seconds
    print(
        f"{label:<44} {seconds * 1000:8.0f} ms {rate:>12,.0f} keys/s"
        f"   -> {TARGET_KEYS / rate:5.2f} s for 1.4 M keys"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    count, repeat = args.keys, args.repeat

    rows = realistic_rows(count)
    signer = PemSigner(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    info = SignatureInfo("v1", "530")

    print(
        f"{count:,} keys, best of {repeat}; target: {TARGET_KEYS:,} keys in <= "
        f"{TARGET_SECONDS:.0f} s end to end (DB reads, encoding, signing, zip, S3)"
    )
    seconds, keys = best_of(repeat, lambda: tuple(map(ExportKey._make, rows)))
    report("rows -> ExportKey (DB adapter's share)", seconds, count)
    gc.disable()  # 1.4 M new tuples trigger many collections: the job may want this too
    seconds, _ = best_of(repeat, lambda: tuple(map(ExportKey._make, rows)))
    gc.enable()
    report("rows -> ExportKey, gc disabled", seconds, count)

    def batch_of(keys: tuple[ExportKey, ...]) -> ExportBatch:
        return ExportBatch(1_600_000_000, 1_600_086_400, "NZ", 1, 1, (info,), keys)

    sorted_batch = batch_of(keys)
    seconds, export_bin = best_of(repeat, lambda: encode_export_bin(sorted_batch))
    report("encode_export_bin, keys in key order", seconds, count)
    encode_seconds = seconds

    shuffled = list(keys)
    random.Random(1).shuffle(shuffled)
    shuffled_batch = batch_of(tuple(shuffled))
    seconds, _ = best_of(repeat, lambda: encode_export_bin(shuffled_batch))
    report("encode_export_bin, keys shuffled (sort cost)", seconds, count)

    seconds, signature = best_of(repeat, lambda: signer.sign(export_bin))
    report("PemSigner.sign (SHA-256 of export.bin)", seconds, count)
    export_sig = encode_signature_list(info, 1, 1, signature)

    zip_seconds = {}
    for level in (1, 6):
        seconds, archive = best_of(
            repeat, lambda level=level: build_zip(export_bin, export_sig, compresslevel=level)
        )
        zip_seconds[level] = seconds
        report(
            f"build_zip level {level} ({len(export_bin) / 2**20:.1f} MiB -> "
            f"{len(archive) / 2**20:.1f} MiB)",
            seconds,
            count,
        )

    print()
    for level, seconds in zip_seconds.items():
        pure = encode_seconds + seconds
        print(
            f"encode + zip level {level}: {count / pure:,.0f} keys/s; 1.4 M keys -> "
            f"{TARGET_KEYS / count * pure:.2f} s of the {TARGET_SECONDS:.0f} s budget, one core"
        )


if __name__ == "__main__":
    main()
