"""Masked exposure keys (``enfkeys.keymask``) against the database's ``unmask_keys``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg2
import pytest

from covidtracer import db, migrations
from covidtracer.enfkeys import keymask
from covidtracer.enfkeys.schema import MIGRATIONS
from covidtracer.settings import DatabaseSettings


@pytest.fixture
def conn(pg_schema: str, pg_schema_direct: str) -> Iterator[psycopg2.extensions.connection]:
    direct = psycopg2.connect(pg_schema_direct)
    migrations.migrate(direct, MIGRATIONS)
    direct.close()
    connection = psycopg2.connect(pg_schema)
    connection.autocommit = True
    yield connection
    connection.close()


def _unmask(cur: psycopg2.extensions.cursor, params: dict[str, object]) -> list[bytes]:
    cur.execute(f"SELECT {keymask.unmasked('keys')}", params)
    row = cur.fetchone()
    assert row is not None
    return [bytes(key) for key in row[0]]


@pytest.mark.parametrize("count", [0, 1, 14, 30])
def test_the_database_unmasks_what_the_service_masked(
    conn: psycopg2.extensions.connection, count: int
) -> None:
    keys = [secrets.token_bytes(16) for _ in range(count)]
    with conn.cursor() as cur:
        params = keymask.masked_params(cur, "keys", keys)
        assert not set(params["keys"]) & set(keys)  # type: ignore[call-overload]
        assert _unmask(cur, params) == keys


def test_the_same_keys_are_masked_differently_every_time(
    conn: psycopg2.extensions.connection,
) -> None:
    """A fresh nonce per array: two logged statements with the same key share no bytes
    an observer could line up (XOR of two masks of one key would cancel the key)."""
    keys = [secrets.token_bytes(16)] * 3
    with conn.cursor() as cur:
        first = keymask.masked_params(cur, "keys", keys)
        second = keymask.masked_params(cur, "keys", keys)
    assert first["keys_nonce"] != second["keys_nonce"]
    assert len({*first["keys"], *second["keys"]}) == 6  # type: ignore[misc]


def test_keys_masked_with_another_secret_are_refused_not_stored_as_garbage(
    conn: psycopg2.extensions.connection,
) -> None:
    keys = [secrets.token_bytes(16)]
    other = secrets.token_bytes(32)
    nonce = secrets.token_bytes(16)
    params = {
        "keys": keymask.mask(other, nonce, keys),
        "keys_nonce": nonce,
        "keys_mask": keymask.fingerprint(other),
    }
    with conn.cursor() as cur, pytest.raises(psycopg2.Error) as refused:
        _unmask(cur, params)
    assert refused.value.pgcode == db.STALE_KEY_MASK


def test_a_connection_whose_database_changed_its_secret_is_not_reused(
    pg_schema: str, pg_schema_direct: str
) -> None:
    """The pool's connection cached the old secret; the refusal retires it, and the next
    block's new connection masks with the new secret."""
    direct = psycopg2.connect(pg_schema_direct)
    migrations.migrate(direct, MIGRATIONS)
    direct.autocommit = True  # after: the migrator leaves its connection transactional
    database = DatabaseSettings(url=pg_schema)
    keys = [secrets.token_bytes(16)]
    db.close()
    try:
        with db.autocommit(database) as cur:
            assert _unmask(cur, keymask.masked_params(cur, "keys", keys)) == keys
        with direct.cursor() as admin:
            admin.execute("UPDATE key_mask SET secret = %s", (secrets.token_bytes(32),))
        with pytest.raises(psycopg2.Error), db.autocommit(database) as cur:
            _unmask(cur, keymask.masked_params(cur, "keys", keys))
        with db.autocommit(database) as cur:
            assert _unmask(cur, keymask.masked_params(cur, "keys", keys)) == keys
    finally:
        db.close()
        direct.close()
