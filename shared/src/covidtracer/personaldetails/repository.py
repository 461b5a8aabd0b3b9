"""The ``PersonalDetails`` table's item as pynamodb declares it: the attribute names and
types of ``covidtracer.personaldetails.model``'s contract, for the API that writes it.

Bind it to the stage's table with ``covidtracer.dynamo.bind(PersonalDetailsItem, name)``.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import ListAttribute, MapAttribute, UnicodeAttribute
from pynamodb.models import Model


class EthnicityAttribute(MapAttribute[str, Any]):
    selected = ListAttribute(of=UnicodeAttribute, default=list)
    other = UnicodeAttribute(null=True)


class PersonalDetailsItem(Model):
    """The item contract of ``covidtracer.personaldetails.model``: optional attributes are omitted
    (``null=True`` attributes holding ``None`` are not written)."""

    userId = UnicodeAttribute(hash_key=True)  # noqa: N815 - table attribute names
    email = UnicodeAttribute()
    firstName = UnicodeAttribute()  # noqa: N815
    middleName = UnicodeAttribute(null=True)  # noqa: N815
    lastName = UnicodeAttribute()  # noqa: N815
    phone = UnicodeAttribute(null=True)  # absent only when a PATCH created the record
    dateOfBirth = UnicodeAttribute(null=True)  # noqa: N815
    gender = UnicodeAttribute(null=True)
    ethnicity = EthnicityAttribute(null=True)  # type: ignore[no-untyped-call]
    updatedAt = UnicodeAttribute()  # noqa: N815
