"""Use cases of contact details (DESIGN §2.2), each ``f(deps, request, now)``.

The caller's userId always comes from their verified access token (the route passes it);
nothing in a body or path can name another person's record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.contactdetails import model
from covidtracer.errors import NotFound, Unauthorized, ValidationError
from covidtracer.personaldetails.model import iso_millis

if TYPE_CHECKING:
    from covidtracer.contactdetails.repository import AccountEmails, ContactDetailsStore

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Dependencies:
    details: ContactDetailsStore
    emails: AccountEmails


@dataclass(frozen=True)
class DetailsChange:
    """A ``PUT`` or ``PATCH`` of the caller's own record (``user_id`` from their token)."""

    user_id: str
    body: Mapping[str, Any]


def get_contact_details(deps: Dependencies, user_id: str, now: datetime) -> dict[str, Any]:
    """The caller's record with ``email`` and ``updatedAt``. Raises ``NotFound`` if there is
    none, ``Unavailable`` if DynamoDB fails."""
    stored = deps.details.get(user_id)
    if stored is None:
        raise NotFound
    return stored.wire()


def replace_contact_details(
    deps: Dependencies, change: DetailsChange, now: datetime
) -> dict[str, Any]:
    """``PUT``: validates a whole record and stores it in place of any previous one, with
    the account's email as of now (the export hands NCTS the email with the record).

    Raises ``ValidationError``; ``Unauthorized`` if the token's account no longer exists;
    ``Unavailable`` if DynamoDB or Cognito fails (then nothing was written).
    """
    changes = model.parse_details(change.body, now=now, partial=False)
    email = deps.emails.email_of(change.user_id)
    if email is None:
        raise Unauthorized
    details = model.apply_details(
        None, changes, user_id=change.user_id, email=email, updated_at=iso_millis(now)
    )
    deps.details.put(details)
    log.info("contact details replaced")
    emit("contact_details_replaced", now=now)
    return details.wire()


def update_contact_details(
    deps: Dependencies, change: DetailsChange, now: datetime
) -> dict[str, Any]:
    """``PATCH``: changes only the fields sent (``null`` or ``""`` clears an optional one),
    in one conditional write, so concurrent PATCHes of different fields both land. With no
    record yet it creates one (with the account's email), as apps 3.0.0–6.1.1 expect of the
    one PATCH they send after the first sign-in (CLIENTS.md); the export to NCTS follows
    from the table's stream either way.

    Raises ``ValidationError`` (also when there is no record and ``firstName`` or
    ``lastName`` is missing); ``NotFound`` for an empty PATCH without a record;
    ``Unauthorized`` if the token's account no longer exists; ``Unavailable`` on DynamoDB
    or Cognito failure.
    """
    user_id = change.user_id
    changes = model.parse_details(change.body, now=now, partial=True)
    if not changes:
        return get_contact_details(deps, user_id, now)  # nothing changes: no export either
    updated_at = iso_millis(now)
    try:
        stored = deps.details.update(user_id, changes, updated_at)
    except NotFound:
        missing = model.missing_to_create(changes)
        if missing:
            raise ValidationError(missing) from None
        email = deps.emails.email_of(user_id)
        if email is None:
            raise Unauthorized from None
        details = model.apply_details(
            None, changes, user_id=user_id, email=email, updated_at=updated_at
        )
        if deps.details.create(details):
            log.info("contact details created by patch", extra={"fields": sorted(changes)})
            emit("contact_details_created", now=now)
            return details.wire()
        # A concurrent request created the record first: apply this PATCH over it.
        stored = deps.details.update(user_id, changes, updated_at)
    log.info("contact details updated", extra={"fields": sorted(changes)})
    emit("contact_details_updated", counts={"fields": len(changes)}, now=now)
    return stored.wire()


def delete_contact_details(deps: Dependencies, user_id: str, now: datetime) -> None:
    """Deletes the caller's record; the stream's REMOVE becomes the export's tombstone.
    Deleting a record that is already gone succeeds (the app may retry after a lost
    response). Raises ``Unavailable`` on DynamoDB failure."""
    deleted = deps.details.delete(user_id)
    log.info("contact details deleted", extra={"existed": deleted})
    emit("contact_details_deleted", counts={"existed": int(deleted)}, now=now)
