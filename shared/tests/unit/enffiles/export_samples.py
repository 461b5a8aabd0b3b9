"""One small export the format tests share: a batch of 50 NZ keys and its export.bin."""

from __future__ import annotations

from covidtracer.enffiles.exportfile import ExportBatch, ExportKey, SignatureInfo, encode_export_bin

SIGNATURE_INFO = SignatureInfo("v1", "530")
BATCH = ExportBatch.one_of_one(
    1_600_000_000,
    1_600_086_400,
    "NZ",
    SIGNATURE_INFO,
    tuple(ExportKey(bytes([n]) * 16, 1, 2_650_000, 144, 1, n % 15) for n in range(50)),
)
EXPORT_BIN = encode_export_bin(BATCH)
