"""The export job's knobs (``ENF_EXPORT_*``), each declared once with ``config.setting``."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer.config import Env, setting

# Keys older than this cannot matter any more (the incubation period plus a margin), and a
# retention this short would delete keys phones have not downloaded yet.
MIN_KEY_RETENTION_DAYS = 10

MINUTES_PER_DAY = 1440


@dataclass(frozen=True, kw_only=True)
class EnfExportSettings:
    """The export job's file identity and discovery limits (DESIGN §4 "Export")."""

    # SignatureInfo of every file: phones look up the public key by (id, version); the id is
    # the one the health authority registered with Apple and Google (NZ's MCC is 530).
    verification_key_id: str = setting("ENF_EXPORT_KEY_ID", "530")
    verification_key_version: str = setting("ENF_EXPORT_KEY_VERSION", "v1")
    region: str = setting("ENF_EXPORT_REGION", "NZ")
    # DIGEST in AWS (RAW caps messages at 4096 bytes). The local stack says RAW: moto 5.2
    # ignores MessageType and hashes what it is sent, so a digest would be hashed twice.
    kms_message_type: str = setting(
        "ENF_EXPORT_KMS_MESSAGE_TYPE", "DIGEST", choices=("DIGEST", "RAW")
    )
    # Deflate level of the zips: 1 is ~3x faster than 6 for a few % larger files.
    compression_level: int = setting("ENF_EXPORT_COMPRESSION_LEVEL", 1, minimum=0, maximum=9)
    # Fake-key padding (``padding``): every file of a day holds the day's fake uploads, at
    # least Google's 1000 + 0-100 keys, carried from each delta to the next, so neither a
    # file's size nor a comparison of a day's files tells which keys are real (DESIGN §8).
    # On unless a stage turns it off (the local stack, whose tests read back exactly what
    # they upload).
    pad_files: bool = setting("ENF_EXPORT_PAD_FILES", True)
    # Longer than a run takes, shorter than the 5-minute schedule.
    lease_seconds: int = setting("ENF_EXPORT_LEASE_SECONDS", 240, minimum=10, maximum=900)
    file_retention_days: int = setting("ENF_EXPORT_FILE_RETENTION_DAYS", 14, minimum=1, maximum=60)
    list_default_limit: int = setting("ENF_EXPORT_LIST_DEFAULT_LIMIT", 100, minimum=1, maximum=1000)
    list_max_limit: int = setting("ENF_EXPORT_LIST_MAX_LIMIT", 1000, minimum=1, maximum=10_000)
    # Length of the delta windows: an upload is listed within one window plus one 5-minute
    # run, and its upload time is known to an observer only to within one window. One hour
    # by default: Google's reference server truncates upload times to the hour for that
    # privacy reason, and phones check every few hours, so a shorter window would only
    # reveal more. Each delta holds the day so far and supersedes the last, so the discovery
    # bounds (15 files for a new phone, 2 per 3-hourly check) hold for any length. The local
    # stack uses 1 minute, so a developer's upload is listed within minutes.
    window_minutes: int = setting("ENF_EXPORT_WINDOW_MINUTES", 60, minimum=1, maximum=1440)
    # How long after a window ends it is built: uploads in flight at the boundary (their
    # created_at stamped just before it) have committed by then. A minute in AWS; the local
    # stack, whose uploads commit in milliseconds, says 5 s and runs just after it.
    settle_seconds: int = setting("ENF_EXPORT_SETTLE_SECONDS", 60, minimum=1, maximum=600)

    def check(self, env: Env) -> None:
        if self.window_minutes > 0 and MINUTES_PER_DAY % self.window_minutes:
            # Windows are cut from midnight UTC: they must tile the day exactly.
            env.problems.append(
                f"ENF_EXPORT_WINDOW_MINUTES must divide a day ({MINUTES_PER_DAY} minutes), "
                f"got {self.window_minutes}"
            )
        if self.file_retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_EXPORT_FILE_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}"
            )
        if self.list_default_limit > self.list_max_limit:
            env.problems.append(
                "ENF_EXPORT_LIST_DEFAULT_LIMIT must not exceed ENF_EXPORT_LIST_MAX_LIMIT"
            )
