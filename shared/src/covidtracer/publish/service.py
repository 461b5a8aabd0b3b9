"""``POST /v1/publish`` as ``f(deps, request, now)``: Google's key-server contract on the keys
and export files COVID Green's upload uses (google/exposure-notifications-server
internal/publish/publish.go ``process``, step for step, with one deliberate difference).

The difference: a retry of the very same publish after a lost answer succeeds. Google's
server finds the keys already stored and, with no revision token, answers
``missing_revision_token``. Here each accepted certificate is remembered (its SHA-256, the
digest of the keys it stored, how many) in the publish's own transaction; a publish whose
certificate is remembered with the same keys is answered as the first was, with a revision
token for those keys, and stores nothing again. A concurrent twin waits on the first's row
and then gets that same answer. A certificate is otherwise good for one publish.

The common publish (new keys, a new certificate) is one statement, as COVID Green's upload
is (``db.publish_new_keys``); a revision, a retry or a spent certificate takes the
transaction that locks the stored keys.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from covidtracer import db
from covidtracer.analytics.emitter import emit
from covidtracer.enfkeys import db as keys_sql
from covidtracer.enfkeys.model import REVOKED, StoredKey, upload_digest
from covidtracer.enfkeys.service import key_rules
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.logs import get_logger
from covidtracer.publish import certificate, model, revision
from covidtracer.publish import db as sql
from covidtracer.publish.model import NewKey, PublishApiError
from covidtracer.verification.model import (
    AppsDocument,
    AuthorityKey,
    HealthAuthority,
    JsonRequest,
    decode_json,
)
from covidtracer.verification.service import google_errors

log = get_logger(__name__)


class Keyring(Protocol):
    def current(self, now: datetime) -> tuple[int, bytes]: ...

    def all(self, now: datetime) -> dict[int, bytes]: ...


@dataclass(frozen=True)
class Deps:
    """What the publish use case needs (``wiring``)."""

    settings: EnfSettings
    apps: Callable[[], AppsDocument]
    # The PEM of this deployment's certificate key (KMS GetPublicKey): its own health
    # authority is registered by default.
    own_public_key: Callable[[], str]
    keyring: Keyring
    randbytes: Callable[[int], bytes] = os.urandom
    randbelow: Callable[[int], int] = secrets.randbelow


def padding(deps: Deps) -> str:
    """publish.go generatePadding: min + [0, range) random bytes, base64."""
    p = deps.settings.publish
    return base64.b64encode(
        deps.randbytes(p.padding_min_bytes + deps.randbelow(p.padding_range_bytes))
    ).decode("ascii")


def publish(deps: Deps, request: JsonRequest, now: datetime) -> dict[str, Any]:
    """``POST /v1/publish``: the answer (PublishResponse) with its padding. Raises
    ``PublishApiError`` in Google's codes and statuses, padded too."""
    try:
        answer = _publish(deps, request, now)
    except PublishApiError as error:
        error.padding = padding(deps)
        raise
    answer["padding"] = padding(deps)
    return answer


def authorities(deps: Deps) -> list[HealthAuthority]:
    """This deployment's own health authority (its certificate key, issuer and audience,
    for ``ENF_PUBLISH_APP_IDS``) and those of the apps document. Raises ``Unavailable``."""
    v = deps.settings.verification
    own = HealthAuthority(
        issuer=v.certificate_issuer,
        audience=v.certificate_audience,
        keys={v.certificate_kid: AuthorityKey(deps.own_public_key())},
        app_ids=frozenset(deps.settings.publish.app_ids),
    )
    return [own, *deps.apps().authorities]


def _make(status: int, code: str, message: str) -> PublishApiError:
    return PublishApiError(status, code, message)


def _publish(deps: Deps, request: JsonRequest, now: datetime) -> dict[str, Any]:
    settings = deps.settings
    asked = model.parse_publish(decode_json(request, model.PUBLISH_FIELDS, model.refused))
    with google_errors(_make, model.UNABLE_TO_LOAD_HEALTH_AUTHORITY):
        known = authorities(deps)
    if not any(asked.health_authority_id in a.app_ids for a in known):
        raise PublishApiError(
            401, model.UNKNOWN_HEALTH_AUTHORITY_ID, "unauthorized health authority"
        )
    claims = certificate.verify(
        asked.verification_payload,
        known,
        asked.health_authority_id,
        asked.keys,
        asked.hmac_key,
        now,
    )
    token_keys, token_failed = _open(deps, asked.revision_token, now)
    p = settings.publish
    onset_rules = model.OnsetRules(
        p.max_symptom_onset_days, p.max_onset_report_days, p.default_onset_days_ago
    )
    onset = model.onset_interval(
        asked.symptom_onset_interval, claims.symptom_onset_interval, onset_rules, now
    )
    rules = key_rules(settings)
    shaped = model.transform(asked.keys, claims.report_type, onset, rules, onset_rules, now)
    if shaped.errors and not shaped.keys:
        message = f"unable to read request data: {'; '.join(shaped.errors)}"
        raise PublishApiError(400, model.BAD_REQUEST, message, shaped.warnings)
    cert = model.certificate_digest(asked.verification_payload)
    digest = upload_digest([k.key for k in shaped.keys])
    revised: list[revision.RevisableKey] = []
    again = False  # the very same publish, answered before (nothing new to count)
    with google_errors(_make, model.INTERNAL_ERROR):
        # The data key first: if KMS is down the answer is a 503 before anything is stored.
        sealing = deps.keyring.current(now)
        # The common case first: new keys under a new certificate, in one statement.
        fresh = _fresh(shaped.keys, set())
        with db.autocommit(settings.database) as cur:
            incoming = [k.key.key_data for k in shaped.keys]
            new_keys = sql.publish_new_keys(cur, cert, digest, incoming, fresh, now)
            if new_keys is not None and len(new_keys) != len(fresh):
                sql.set_inserted(cur, cert, len(new_keys))
        if new_keys is not None:
            added = set(new_keys)
            published = [_revisable(n) for n in shaped.keys if n.key.key_data in added]
            count = len(published)
        else:
            with db.transaction(settings.database) as cur:
                if sql.remember_certificate(cur, cert, digest, now):
                    stored = sql.lock_stored_keys(cur, [k.key.key_data for k in shaped.keys])
                    inserted, revised = _store(
                        cur, shaped.keys, stored, token_keys, token_failed, now
                    )
                    sql.set_inserted(cur, cert, len(inserted))
                    count = len(inserted)
                    published = inserted + revised
                else:
                    count, published = _same_publish_again(cur, cert, digest, shaped.keys)
                    again = True
        kept = [k for k in token_keys if model.retained(*_validity(k), now, rules.max_age_days)]
        token = _seal([*kept, *published], sealing, settings.publish.revision_token_min_keys)
    if count and not again:
        emit("keys_uploaded", counts={"keys": count}, categories={"platform": "enx"}, now=now)
    if revised:
        emit("keys_revised", counts={"keys": len(revised)}, now=now)
    answer: dict[str, Any] = {}
    if token:
        answer["revisionToken"] = token
    if count:
        answer["insertedExposures"] = count
    if shaped.errors:
        answer["error"] = "; ".join(shaped.errors)
        answer["code"] = model.PARTIAL_FAILURE
    if shaped.warnings:
        answer["warnings"] = shaped.warnings
    return answer


def _validity(key: revision.RevisableKey) -> tuple[int, int]:
    return key.rolling_start_number, key.rolling_period


def _open(deps: Deps, token: str, now: datetime) -> tuple[frozenset[revision.RevisableKey], bool]:
    """The keys a revision token names, and whether a token was sent that did not open
    (publish.go treats it as none, and says ``invalid_revision_token`` if one was needed)."""
    if not token:
        return frozenset(), False
    with google_errors(_make, model.INTERNAL_ERROR):
        data_keys = deps.keyring.all(now)
    try:
        return revision.open_token(token, data_keys), False
    except revision.InvalidToken:
        log.warning("revision token did not open")
        return frozenset(), True


def _store(
    cur: Any,
    incoming: Sequence[NewKey],
    stored: dict[bytes, model.StoredState],
    token: frozenset[revision.RevisableKey],
    token_failed: bool,
    now: datetime,
) -> tuple[list[revision.RevisableKey], list[revision.RevisableKey]]:
    """publish/database/exposure.go InsertAndReviseExposures: keys already stored need the
    revision token that names them (``missing_revision_token`` / ``invalid_revision_token``)
    and a valid transition; new keys are stored, but never a negative report's."""
    if stored and not token:
        if token_failed:
            raise PublishApiError(400, model.INVALID_REVISION_TOKEN, "revision token is invalid")
        raise PublishApiError(
            400, model.MISSING_REVISION_TOKEN, "no revision token, but sent existing keys"
        )
    allowed = {k.key_data: k for k in token}
    revised: list[revision.RevisableKey] = []
    for new in incoming:
        state = stored.get(new.key.key_data)
        if state is None:
            continue
        if (state.rolling_start_number, state.rolling_period) != (
            new.key.rolling_start_number,
            new.key.rolling_period,
        ):
            # exposure.go ErrIncomingMetadataMismatch falls to publish.go's default branch.
            raise PublishApiError(400, model.INTERNAL_ERROR, "Internal Server Error")
        named = allowed.get(new.key.key_data)
        if named is None or _validity(named) != (state.rolling_start_number, state.rolling_period):
            raise PublishApiError(400, model.INVALID_REVISION_TOKEN, "revision token is invalid")
        if model.revise(state, new.report_type) == model.REVISED:
            sql.revise_key(
                cur,
                new.key.key_data,
                new.report_type,
                new.days_since_onset,
                new.key.transmission_risk_level,
                now,
            )
            revised.append(_revisable(new))
    fresh = _fresh(incoming, set(stored))
    new_keys = set(keys_sql.insert_keys(cur, fresh, now)) if fresh else set()
    inserted = [_revisable(n) for n in incoming if n.key.key_data in new_keys]
    return inserted, revised


def _fresh(incoming: Sequence[NewKey], stored: set[bytes]) -> list[StoredKey]:
    """The keys to store: those not stored yet, and never a negative report's."""
    return [
        StoredKey(
            key_data=n.key.key_data,
            rolling_start_number=n.key.rolling_start_number,
            rolling_period=n.key.rolling_period,
            transmission_risk_level=n.key.transmission_risk_level,
            report_type=n.report_type,
            days_since_onset=n.days_since_onset,
        )
        for n in incoming
        if n.key.key_data not in stored and n.report_type != REVOKED
    ]


def _revisable(new: NewKey) -> revision.RevisableKey:
    return revision.RevisableKey(
        new.key.key_data, new.key.rolling_start_number, new.key.rolling_period
    )


def _same_publish_again(
    cur: Any, cert: bytes, digest: bytes, incoming: Sequence[NewKey]
) -> tuple[int, list[revision.RevisableKey]]:
    """The answer to a publish whose certificate was already accepted: the first publish's
    count and a revision token for its keys, if the keys are the same (a retry after a lost
    answer); else the certificate is spent."""
    inserted = sql.remembered_publish(cur, cert, digest)
    if inserted is None:
        raise PublishApiError(
            401,
            model.CERTIFICATE_INVALID,
            "unable to validate diagnosis verification: certificate already used",
        )
    stored = sql.lock_stored_keys(cur, [k.key.key_data for k in incoming])
    mine = [_revisable(n) for n in incoming if n.key.key_data in stored]
    return inserted, mine


def _seal(keys: Sequence[revision.RevisableKey], data_key: tuple[int, bytes], min_keys: int) -> str:
    """The revision token for ``keys`` (none for no keys: Go's omitempty drops it)."""
    if not keys:
        return ""
    return revision.seal(keys, data_key[0], data_key[1], min_keys)
