"""The diary-upload use case (DESIGN §2.3), ``f(deps, request, now)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.diary import model
from covidtracer.diary.settings import DiarySettings
from covidtracer.errors import ValidationError
from covidtracer.ratelimit import service as ratelimit
from covidtracer.ratelimit.model import Limit

if TYPE_CHECKING:
    from covidtracer.diary.repository import LocationHistory
    from covidtracer.ratelimit.repository import Counters

log = logs.get_logger(__name__)


GUESS_METRIC = "DiaryConsentCodeGuesses"


@dataclass(frozen=True)
class Dependencies:
    counters: Counters
    ncts: LocationHistory
    rules: DiarySettings
    stage: str  # the guess metric's dimension


@dataclass(frozen=True)
class DiaryUploadRequest:
    body: Mapping[str, Any]
    source_ip: str


def upload_diary(deps: Dependencies, request: DiaryUploadRequest, now: datetime) -> int:
    """Validates the diary, drops entries past retention, hands the rest to NCTS in one
    request (all or nothing). Returns how many entries were sent.

    The consent code is the credential, so guesses are limited (docs/operations.md §10): a
    code NCTS refuses counts against the source address (``TooManyRequests`` once its
    allowance is used up, before anything is forwarded) and in all, which refuses nobody:
    past its threshold every address's allowance shrinks, and each refused code is reported
    as a metric. An accepted diary or an NCTS outage counts nothing. Raises
    ``ValidationError`` (also ``ConsentCodeRejected`` from NCTS), ``TooManyRequests`` or
    ``Unavailable``. Even a diary left empty by the cut is sent, so NCTS still judges the
    consent code.
    """
    rules = deps.rules
    upload = model.parse_diary_upload(request.body, now=now, rules=rules)
    kept = upload.within_retention(now, rules.retention_days)
    window = rules.guess_window_seconds
    with ratelimit.counted(deps.counters, now) as tally:
        # Counted before NCTS answers (a guess must be refused before it is forwarded),
        # refunded once NCTS accepts the code.
        guessing = tally.note(Limit("diary-guess", rules.guesses_global, window), "all") > (
            rules.guesses_global
        )
        allowance = rules.guesses_per_ip_guarded if guessing else rules.guesses_per_ip
        tally.count([(Limit("diary-guess-ip", allowance, window), request.source_ip)])
        try:
            deps.ncts.send_location_history(kept.consent_code, [e.wire() for e in kept.entries])
        except ValidationError:  # NCTS refused the code (the diary itself was judged above)
            logs.metric(
                GUESS_METRIC,
                1,
                stage=deps.stage,
                logger=__name__,
                message="consent code refused",
            )
            raise
        tally.refund()
    dropped = len(upload.entries) - len(kept.entries)
    log.info("diary forwarded", extra={"entries": len(kept.entries), "dropped": dropped})
    emit("diary_shared", counts={"entries": len(kept.entries), "dropped": dropped}, now=now)
    return len(kept.entries)
