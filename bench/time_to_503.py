"""Time to 503 for each dependency frozen, with the production deadlines (issue 20).

The tests (``*/tests/test_deadlines.py``) freeze each dependency with deadlines made short
by settings; this measures the same failures with the settings' defaults, the numbers in
docs/operations.md ("Time budget per dependency"):

- PostgreSQL: PgBouncer (the RDS Proxy stand-in) in front of ``DATABASE_URL``'s server,
  stopped with SIGSTOP, reached through db.py with a connection already pooled, then with
  a new one;
- the AWS APIs (Secrets Manager through boto3, DynamoDB through pynamodb, Cognito), NCTS,
  FCM, SMS and Apple DeviceCheck (the partner client with each one's default timeout): a
  loopback server that accepts connections and never answers.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/time_to_503.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from covidtracer import aws, db, dynamo, outbound, settings
from covidtracer.config import Env, read
from covidtracer.enfkeys.settings import SmsSettings
from covidtracer.errors import Unavailable
from covidtracer.settings import DatabaseSettings, FcmSettings, PartnerSettings
from tracerstack import pooler
from tracerstack.environment import LOCAL_CREDENTIALS
from tracerstack.pytest_plugin import UnresponsiveServer


def _time(what: str, call: Callable[[], object]) -> None:
    started = time.monotonic()
    try:
        call()
        outcome = "answered"
    except Unavailable:
        outcome = "503"
    except Exception as error:  # a library error the adapter would translate
        outcome = f"{type(error).__name__} (503 in the adapter)"
    print(f"{what:<58} {outcome:<34} {time.monotonic() - started:6.2f} s", flush=True)


def postgresql(server_url: str) -> None:
    proxy = pooler.start(server_url)
    try:
        database = read(DatabaseSettings, Env({"DATABASE_URL": proxy.url("postgres")}))
        db.ping(database)  # one connection pooled, as in a warm Lambda
        proxy.freeze()
        _time("PostgreSQL frozen, pooled connection (query deadline)", lambda: db.ping(database))
        _time("PostgreSQL frozen, new connection (connect timeout)", lambda: db.ping(database))
    finally:
        proxy.stop()
        db.close()


def aws_apis(frozen: str) -> None:
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model

    class Item(Model):
        key = UnicodeAttribute(hash_key=True)

    os.environ.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": frozen})
    settings.reset()
    aws.reset()
    dynamo.reset()
    _time("Secrets Manager (boto3)", lambda: aws.secret_string("arn:frozen"))
    table = dynamo.bind(Item, "frozen")
    _time("DynamoDB GetItem (pynamodb)", lambda: dynamo.get_or_none(table, "k", "frozen"))
    _time(
        "Cognito AdminGetUser",
        lambda: aws.cognito().admin_get_user(UserPoolId="ap-southeast-2_x", Username="u"),
    )


def partners(frozen: str) -> None:
    env = Env({"NCTS_BASE_URL": frozen, "FCM_SERVICE_ACCOUNT_SECRET_ID": "arn:fcm"})
    ncts = read(PartnerSettings, env).ncts_timeout_seconds
    fcm = read(FcmSettings, env).timeout_seconds
    sms = read(SmsSettings, Env({})).timeout_seconds
    for name, timeout in (("NCTS", ncts), ("FCM", fcm), ("SMS", sms), ("Apple", ncts)):
        _time(
            f"{name} (partner client, {timeout} s timeout)",
            lambda n=name, t=timeout: outbound.post(frozen, dependency=n, timeout=t, json={}),
        )


def main() -> None:
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        raise SystemExit("set DATABASE_URL (the PostgreSQL server to put PgBouncer in front of)")
    postgresql(server_url)
    frozen = UnresponsiveServer()
    try:
        aws_apis(frozen.url)
        partners(frozen.url)
    finally:
        frozen.close()


if __name__ == "__main__":
    main()
