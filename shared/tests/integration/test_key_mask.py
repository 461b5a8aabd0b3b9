"""Masked exposure keys (``enfkeys.keymask``) against the database's ``unmask_keys``."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import psycopg2
import pytest

from covidtracer import db, migrations
from covidtracer.enfkeys import keymask
from covidtracer.enfkeys.schema import MIGRATIONS
from covidtracer.settings import DatabaseSettings

Connection = psycopg2.extensions.connection
Cursor = psycopg2.extensions.cursor


def _migrated(pg_schema_direct: str, target: int | None = None) -> Connection:
    direct = psycopg2.connect(pg_schema_direct)
    migrations.migrate(direct, MIGRATIONS, target=target)
    direct.autocommit = True  # after: the migrator leaves its connection transactional
    return direct


@pytest.fixture
def conn(pg_schema: str, pg_schema_direct: str) -> Iterator[Connection]:
    _migrated(pg_schema_direct).close()
    connection = psycopg2.connect(pg_schema)
    connection.autocommit = True
    yield connection
    connection.close()


def _sent(cur: Cursor, keys: keymask.MaskedKeys) -> tuple[str, list[bytes]]:
    """The statement's text and the keys the database made of ``keys``."""
    text = cur.mogrify("SELECT %(keys)s", {"keys": keys}).decode()
    cur.execute("SELECT %(keys)s", {"keys": keys})
    row = cur.fetchone()
    assert row is not None
    return text, [bytes(key) for key in row[0]]


@pytest.mark.parametrize("count", [0, 1, 14, 30])
def test_the_database_unmasks_what_the_service_masked(conn: Connection, count: int) -> None:
    keys = [secrets.token_bytes(16) for _ in range(count)]
    keys += [b"\xff" * 16, b"\x80" + bytes(15), bytes(16)][: min(count, 3)]  # sign bits
    with conn.cursor() as cur:
        text, unmasked = _sent(cur, keymask.of(cur).keys(keys))
    assert unmasked == keys
    assert text.startswith("SELECT unmask_keys(")
    assert not [key for key in keys if key.hex() in text]


def test_the_same_keys_are_masked_differently_every_time(conn: Connection) -> None:
    """A fresh nonce per array: two logged statements with the same key share no bytes
    an observer could line up (XOR of two masks of one key would cancel the key)."""
    keys = [secrets.token_bytes(16)] * 3
    with conn.cursor() as cur:
        first, second = keymask.of(cur).keys(keys), keymask.of(cur).keys(keys)
    assert first.nonce != second.nonce
    assert len({*first.keys, *second.keys}) == 6


def test_digests_are_keyed_with_the_databases_secret(conn: Connection) -> None:
    digest = hashlib.sha256(b"an upload's keys").digest()
    with conn.cursor() as cur:
        mask = keymask.of(cur)
    assert mask.secret is not None
    assert mask.digest(digest) not in (digest, hashlib.sha256(digest).digest())
    assert mask.digest(digest) == keymask.Mask(mask.secret).digest(digest)


def test_keys_masked_with_another_secret_are_refused_not_stored_as_garbage(
    conn: Connection,
) -> None:
    with conn.cursor() as cur, pytest.raises(psycopg2.Error) as refused:
        _sent(cur, keymask.Mask(secrets.token_bytes(32)).keys([secrets.token_bytes(16)]))
    assert refused.value.pgcode == db.STALE_KEY_MASK


@pytest.mark.parametrize("key", [bytes(15), bytes(17)])
def test_the_database_refuses_a_key_of_another_length(conn: Connection, key: bytes) -> None:
    """``mask`` refuses it in Python; the SQL refuses it too rather than pad or cut it."""
    with conn.cursor() as cur:
        good = keymask.of(cur).keys([bytes(16)])
    wrong = keymask.MaskedKeys([key], good.nonce, good.fingerprint)
    with conn.cursor() as cur, pytest.raises(psycopg2.errors.InvalidParameterValue):
        _sent(cur, wrong)


def test_before_migration_0008_keys_go_as_a_plain_array_and_digests_unkeyed(
    pg_schema: str, pg_schema_direct: str
) -> None:
    """A release's code is live a few seconds before its migrations run (deploy.py): the
    uploads in between still work, as they did before the mask; once migrated, the same
    connection masks."""
    direct = _migrated(pg_schema_direct, target=7)
    connection = psycopg2.connect(pg_schema)
    connection.autocommit = True
    keys = [secrets.token_bytes(16)]
    try:
        with connection.cursor() as cur:
            mask = keymask.of(cur)
            assert mask.secret is None
            assert mask.digest(b"d") == b"d"
            text, unmasked = _sent(cur, mask.keys(keys))
            assert unmasked == keys and "unmask_keys" not in text
            migrations.migrate(direct, MIGRATIONS)
            text, unmasked = _sent(cur, keymask.of(cur).keys(keys))
            assert unmasked == keys and text.startswith("SELECT unmask_keys(")
    finally:
        connection.close()
        direct.close()


def test_a_connection_whose_database_changed_its_secret_is_not_reused(
    pg_schema: str, pg_schema_direct: str
) -> None:
    """The pool's connection cached the old secret; the refusal retires it, and the next
    block's new connection masks with the new secret."""
    direct = _migrated(pg_schema_direct)
    database = DatabaseSettings(url=pg_schema)
    keys = [secrets.token_bytes(16)]
    db.close()
    try:
        with db.autocommit(database) as cur:
            assert _sent(cur, keymask.of(cur).keys(keys))[1] == keys
        with direct.cursor() as admin:
            admin.execute("UPDATE key_mask SET secret = %s", (secrets.token_bytes(32),))
        with pytest.raises(psycopg2.Error) as refused, db.autocommit(database) as cur:
            _sent(cur, keymask.of(cur).keys(keys))
        assert refused.value.pgcode == db.STALE_KEY_MASK
        with db.autocommit(database) as cur:
            assert _sent(cur, keymask.of(cur).keys(keys))[1] == keys
    finally:
        db.close()
        direct.close()
