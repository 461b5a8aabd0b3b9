"""Contact details: GET and PATCH ``/user/details`` latency through the Lambda handler.

Each request is an API Gateway proxy event handed to the Chalice app the way Lambda does
(``app(event, context)``): the Cognito access token verified in-app (RS256 against the
pool's JWKS, fetched once as in a warm Lambda), the body validated, one DynamoDB call
(a consistent GetItem, or a conditional UpdateItem returning the new item) against moto
over HTTP on loopback, run in a process of its own. DESIGN §7 sets no target; this reports.

    .venv/bin/python bench/details_latency.py [--requests 400]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from apigw import proxy_event

REPO = Path(__file__).resolve().parents[1]
PATH = "/user/details"


def _event(method: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return proxy_event(method, PATH, token, body)


def _moto(port: int) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


def _access_token(boot: Any, env: dict[str, str]) -> str:
    """A real access token from the pool (moto) for a new account."""
    cognito = boot.client("cognito-idp")
    pool = env["USER_POOL_ID"]
    client_id = json.loads(env["APP_CLIENT_IDS"])["ios"]
    email = f"bench-{uuid.uuid4().hex[:8]}@example.nz"
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}],
        MessageAction="SUPPRESS",
    )
    password = "Bench-" + uuid.uuid4().hex + "aA1!"
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=email, Password=password, Permanent=True
    )
    answer = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def _measure(app: Any, events: list[dict[str, Any]], expected: int) -> list[float]:
    context = SimpleNamespace(aws_request_id="bench", function_name="api_handler")
    latencies = []
    for event in events:
        began = time.perf_counter()
        response = app(event, context)
        latencies.append(time.perf_counter() - began)
        if response["statusCode"] != expected:
            raise SystemExit(f"{response['statusCode']} {response['body']}")
    return latencies


def _report(name: str, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:6} n={len(ms)}  median {statistics.median(ms):.2f} ms  p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "infra" / "local"))
    from tracerstack.bootstrap import bootstrap
    from tracerstack.environment import LOCAL_CREDENTIALS, service_environment
    from tracerstack.pytest_plugin import free_port

    os.environ.update(LOCAL_CREDENTIALS)
    port = free_port()
    moto = multiprocessing.get_context("spawn").Process(target=_moto, args=(port,), daemon=True)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                boot = bootstrap(endpoint, "bench")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        env = service_environment(
            boot, partners_url="http://127.0.0.1:9", database_url="postgresql://unused/x"
        )
        os.environ.update(env)
        token = _access_token(boot, env)

        sys.path.insert(0, str(REPO / "services" / "details"))
        import app as details

        logging.getLogger().setLevel(logging.WARNING)  # the access log would measure stdout
        record = {"firstName": "Aroha", "lastName": "Smith", "phone": "+64 21 012 3456"}
        _measure(details.app, [_event("PUT", token, record)], 200)
        warm = [_event("GET", token)] * 20 + [_event("PATCH", token, record)] * 20
        _measure(details.app, warm[:20], 200)
        _measure(details.app, warm[20:], 200)

        gets = [_event("GET", token) for _ in range(args.requests)]
        patches = [
            _event(
                "PATCH",
                token,
                {
                    "firstName": "Kiri",
                    "lastName": f"Ngata{'a' * (n % 5)}",
                    "phone": "+64 27 555 0100",
                },
            )
            for n in range(args.requests)
        ]
        _report("GET", _measure(details.app, gets, 200))
        _report("PATCH", _measure(details.app, patches, 200))
    finally:
        moto.terminate()
        moto.join(timeout=10)


if __name__ == "__main__":
    main()
