"""PynamoDB models bound to a table, region and endpoint from settings, and error translation.

Domain packages declare models without ``Meta`` (table names differ per stage and the
endpoint is moto locally) and get a bound class with ``bind(Model, table_name)``; every model
of the backend (``ExposureEvents``, ``RateLimits``, ``PersonalDetails`` …) goes through here,
so timeouts and retries are the same everywhere. pynamodb costs ~150 ms to import: only
repositories import this module, and the services import those on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from covidtracer import aws, settings
from covidtracer.errors import Unavailable
from covidtracer.validation import camel, camel_fields

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"


def bind[M: Model](model: type[M], table_name: str) -> type[M]:
    """``model`` bound to ``table_name`` in the configured region (and moto's endpoint)."""
    return _bound(model, table_name, settings.aws_settings())  # type: ignore[return-value]


def meta(table_name: str, where: settings.AwsSettings) -> type:
    """A pynamodb ``Meta`` for ``table_name``: region, endpoint, timeouts and retries."""
    connect, read, attempts = aws.budget("dynamodb", where)
    return type(
        "Meta",
        (),
        {
            "table_name": table_name,
            "region": where.region,
            "host": where.endpoint_url,
            # pynamodb builds its own botocore client from these (boto3's config is not
            # shared): the same budget as every other AWS call. Its retries are counted
            # after the first attempt ("total_max_attempts": 1 + max_retry_attempts).
            "connect_timeout_seconds": connect,
            "read_timeout_seconds": read,
            "max_retry_attempts": attempts - 1,
        },
    )


# Every bound model made in this environment, by what it was bound to (their connections
# hold clients: ``connect_bound``, ``forget_credentials``).
_made: dict[tuple[type[Model], str, settings.AwsSettings], type[Model]] = {}


def _bound(model: type[Model], table_name: str, where: settings.AwsSettings) -> type[Model]:
    made = _made.get((model, table_name, where))
    if made is None:
        bound_meta = meta(table_name, where)
        attributes = {"Meta": bound_meta, "__module__": model.__module__}
        made = _made.setdefault(
            (model, table_name, where), type(model.__name__, (model,), attributes)
        )
    return made


def get_or_none[M: Model](model: type[M], key: object, table_role: str) -> M | None:
    """The item under ``key`` read strongly consistent, or None if there is none.

    Raises ``Unavailable`` (naming ``table_role``) when DynamoDB does not answer.
    """
    try:
        return model.get(key, consistent_read=True)
    except model.DoesNotExist:
        return None
    except PynamoDBException as error:
        raise unavailable(table_role, error) from error


def get_record[M: Model, R](
    model: type[M], key: object, table_role: str, to_record: Callable[[M], R]
) -> R | None:
    """``to_record`` of the item under ``key`` (read as ``get_or_none`` does), or None."""
    item = get_or_none(model, key, table_role)
    return None if item is None else to_record(item)


def delete_if_present(model: type[Model], key: object, table_role: str) -> bool:
    """Deletes the item under ``key``; ``False`` if there was none (a condition on the hash
    key, so the answer is exact). Raises ``Unavailable`` when DynamoDB does not answer."""
    [hash_key] = [a for a in model.get_attributes().values() if a.is_hash_key]
    try:
        model(key).delete(condition=hash_key.exists())
    except PynamoDBException as error:
        if is_conditional_check_failure(error):
            return False
        raise unavailable(table_role, error) from error
    return True


def update_if(item: Model, actions: list[Any], condition: Any, table_role: str) -> bool:
    """Applies ``actions`` to ``item`` if ``condition`` holds; ``False`` if it did not (the
    item changed or went meanwhile). Raises ``Unavailable`` when DynamoDB does not answer."""
    try:
        item.update(actions=actions, condition=condition)
    except PynamoDBException as error:
        if is_conditional_check_failure(error):
            return False
        raise unavailable(table_role, error) from error
    return True


def item_of[M: Model](
    model: type[M], record: DataclassInstance, *, omit: Collection[str] = (), **attributes: Any
) -> M:
    """``record`` as an item of ``model``: each field under its ``camel`` name (``user_id``
    -> ``userId``), but for those in ``omit``; ``attributes`` adds or overrides values."""
    return model(**(camel_fields(record, omit=omit) | attributes))


def record_of[R: DataclassInstance](record_type: type[R], item: Model, **fields: Any) -> R:
    """The dataclass ``record_type`` read from ``item``: each field from the attribute of
    its ``camel`` name, but for those given in ``fields``."""
    values = {
        field.name: getattr(item, camel(field.name))
        for field in dataclasses.fields(record_type)
        if field.name not in fields
    }
    return record_type(**values, **fields)


def is_conditional_check_failure(error: PynamoDBException) -> bool:
    return getattr(error, "cause_response_code", None) == CONDITIONAL_CHECK_FAILED


def unavailable(table_role: str, error: Exception) -> Unavailable:
    """The domain error for a DynamoDB failure; chain it: ``raise unavailable(…) from error``."""
    return Unavailable(f"dynamodb:{table_role} ({type(error).__name__})")


def reset() -> None:
    """Forget bound models (tests point them at a fresh endpoint)."""
    _made.clear()


def connect_bound() -> None:
    """Make every bound model's botocore client now (SnapStart's init): the DynamoDB service
    model is parsed once, into the snapshot, instead of in a restored environment's first
    request. No request is sent."""
    for model in list(_made.values()):
        _ = model._get_connection().connection.client


def forget_credentials() -> None:
    """Make every bound model's client resolve its credentials again on its next use, keeping
    the parsed service model (pynamodb makes a new client from the same session when the old
    one has lost its credentials: ``pynamodb.connection.base.Connection.client``). SnapStart
    calls this before the snapshot."""
    for model in list(_made.values()):
        connection = getattr(model, "_connection", None)
        if connection is None:
            continue
        base = connection.connection
        if base._client is not None and base._client._request_signer is not None:
            base._client._request_signer._credentials = None
        base.session._credentials = None
