"""I/O adapters of contact details: the ``PersonalDetails`` table (its item, the contract
with the export app, is ``covidtracer.personaldetails``'s) and the account-email lookup.
Their in-memory twins are ``tracerstack.details_fakes``; one contract test runs against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from covidtracer import aws, dynamo
from covidtracer.contactdetails.model import ContactDetails, Ethnicity
from covidtracer.errors import NotFound
from covidtracer.personaldetails.repository import EthnicityAttribute, PersonalDetailsItem

DetailsChanges = Mapping[str, str | Ethnicity | None]


class ContactDetailsStore(Protocol):
    """One ``PersonalDetails`` item per user, written as the item contract of
    ``covidtracer.personaldetails.model`` says (the NCTS export reads it back)."""

    def get(self, user_id: str) -> ContactDetails | None: ...

    def put(self, details: ContactDetails) -> None:
        """Create or replace the whole record."""

    def create(self, details: ContactDetails) -> bool:
        """Store the record unless the user has one already; ``False`` if they had."""

    def update(self, user_id: str, changes: DetailsChanges, updated_at: str) -> ContactDetails:
        """Set the changed fields (``None`` removes one) of an existing record, atomically;
        returns the record as stored. Raises ``NotFound`` when there is none (never an
        upsert: the caller decides whether the change may create a record)."""

    def delete(self, user_id: str) -> bool:
        """Remove the record (its stream REMOVE becomes the export's tombstone); ``False``
        if there was none."""


class AccountEmails(Protocol):
    def email_of(self, user_id: str) -> str | None:
        """The account's sign-in email, or ``None`` if the account does not exist."""


def _ethnicity_attribute(value: Ethnicity | None) -> EthnicityAttribute | None:
    if value is None:
        return None
    selected, other = list(value.selected), value.other
    return EthnicityAttribute(selected=selected, other=other)  # type: ignore[no-untyped-call]


def _to_details(item: PersonalDetailsItem) -> ContactDetails:
    ethnicity = None
    if item.ethnicity is not None:
        # pynamodb types the list's elements as the attribute class; they are str.
        selected = tuple(str(label) for label in item.ethnicity.selected or ())
        ethnicity = Ethnicity(selected, item.ethnicity.other)
    return dynamo.record_of(ContactDetails, item, ethnicity=ethnicity)


class _AlreadyStored(Exception):
    """A conditional create found the user's record already there."""


class DynamoContactDetails:
    """``PersonalDetails`` in DynamoDB; every failure becomes ``Unavailable``."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(PersonalDetailsItem, table_name)

    def get(self, user_id: str) -> ContactDetails | None:
        return dynamo.get_record(self._model, user_id, "personal_details", _to_details)

    def put(self, details: ContactDetails) -> None:
        self._save(details, condition=None)

    def create(self, details: ContactDetails) -> bool:
        try:
            self._save(details, condition=self._model.userId.does_not_exist())
        except _AlreadyStored:
            return False
        return True

    def _save(self, details: ContactDetails, condition: Condition | None) -> None:
        item = dynamo.item_of(
            self._model, details, ethnicity=_ethnicity_attribute(details.ethnicity)
        )
        try:
            item.save(condition=condition)
        except PynamoDBException as error:
            if condition is not None and dynamo.is_conditional_check_failure(error):
                raise _AlreadyStored from error
            raise dynamo.unavailable("personal_details", error) from error

    def update(self, user_id: str, changes: DetailsChanges, updated_at: str) -> ContactDetails:
        model = self._model
        actions: list[Action] = [model.updatedAt.set(updated_at)]
        for name, value in changes.items():
            attribute = getattr(model, name)
            if value is None:
                actions.append(attribute.remove())
            elif isinstance(value, Ethnicity):
                actions.append(attribute.set(_ethnicity_attribute(value)))
            else:
                actions.append(attribute.set(value))
        item = model(user_id)
        try:
            item.update(actions=actions, condition=model.userId.exists())
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                raise NotFound from error
            raise dynamo.unavailable("personal_details", error) from error
        return _to_details(item)

    def delete(self, user_id: str) -> bool:
        return dynamo.delete_if_present(self._model, user_id, "personal_details")


class AccountEmailsFromUsers:
    """The sign-in email of an account: the ``Users`` row (one strongly consistent read),
    else Cognito (``ListUsers`` by ``sub``).

    The row is written by the PostAuthentication consumer, off the sign-in's path, so a
    person who saves their details seconds after their first sign-in may not have one yet;
    Cognito always knows the account but allows few ``ListUsers`` calls per second, so it
    is only the fallback. The access token itself carries no email.
    """

    def __init__(self, users_table: str, user_pool_id: str) -> None:
        from covidtracer.signin.repository import DynamoUsers

        self._users = DynamoUsers(users_table)
        self._user_pool_id = user_pool_id

    def email_of(self, user_id: str) -> str | None:
        row = self._users.get(user_id)
        if row is not None and row.email:
            return row.email
        return self._from_cognito(user_id)

    def _from_cognito(self, user_id: str) -> str | None:
        from covidtracer.signin.cognito import cognito_errors

        if '"' in user_id or "\\" in user_id:
            return None  # never a Cognito sub; it must not reach the filter expression
        with cognito_errors():
            found = aws.cognito().list_users(
                UserPoolId=self._user_pool_id,
                Filter=f'sub = "{user_id}"',
                AttributesToGet=["email"],
                Limit=1,
            )
        for user in found.get("Users", []):
            for attribute in user.get("Attributes", []):
                if attribute["Name"] == "email" and attribute.get("Value"):
                    return str(attribute["Value"])
        return None
