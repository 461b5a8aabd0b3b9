"""Each packaged function's Timeout against the work it does (issue 20, item 4): the API
functions stop by API Gateway's 29 s integration timeout and their dependencies' deadlines
(settings defaults) fit inside it; the jobs have room for their work, and the export's lease
outlives its function. docs/operations.md, "Time budget", has the same numbers."""

from __future__ import annotations

from typing import Any

import pytest

from covidtracer.enffiles.settings import EnfExportSettings
from covidtracer.settings import AwsSettings, DatabaseSettings, PartnerSettings
from tracerstack import deploy

# API Gateway waits at most 29 s for a Lambda integration ("Amazon API Gateway quotas":
# integration timeout 50 ms - 29 s for REST APIs, unless raised by a quota increase).
API_GATEWAY_SECONDS = 29


def _timeouts(service: str) -> dict[str, int]:
    resources: dict[str, Any] = deploy.load_package(service).template["Resources"]
    return {
        name: int(resource["Properties"]["Timeout"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _database_worst_seconds(db: DatabaseSettings) -> float:
    """A request whose pooled connection is probed (2 s), replaced (connect; libpq rounds to
    whole seconds), then waits its full query deadline."""
    return 2 + db.connect_timeout_seconds + 1 + db.query_timeout_ms / 1000


def _aws_call_worst_seconds(aws: AwsSettings) -> float:
    """Every attempt times out, with botocore's jittered backoff (under 1 s) between."""
    per_attempt = (aws.connect_timeout_ms + aws.read_timeout_ms) / 1000
    return aws.max_attempts * per_attempt + (aws.max_attempts - 1)


def _cognito_call_worst_seconds(aws: AwsSettings) -> float:
    return (aws.connect_timeout_ms + aws.cognito_read_timeout_ms) / 1000  # one attempt


def _ncts_call_worst_seconds(partners: PartnerSettings) -> float:
    """Connection failures retried (2 s connect each, with backoff), or one read timeout."""
    attempts = partners.ncts_retries + 1
    backoff = sum(partners.ncts_backoff_ms / 1000 * 2**n for n in range(partners.ncts_retries))
    return max(attempts * 2 + backoff, partners.ncts_timeout_seconds)


def _defaults() -> tuple[DatabaseSettings, AwsSettings, PartnerSettings]:
    from covidtracer.config import Env, read

    env = Env({"NCTS_BASE_URL": "https://ncts.example", "DATABASE_URL": "postgresql://x/y"})
    return read(DatabaseSettings, env), read(AwsSettings, env), read(PartnerSettings, env)


@pytest.mark.parametrize("service", ["details", "enf"])
def test_the_api_function_stops_by_api_gateways_limit_and_its_deadlines_fit_inside(
    service: str,
) -> None:
    timeout = _timeouts(service)["APIHandler"]
    assert timeout <= API_GATEWAY_SECONDS
    database, aws, partners = _defaults()
    call = _aws_call_worst_seconds(aws)
    # The slowest answers (docs/operations.md, "Time budget"): an ENF request whose secret
    # read and database both run out their deadlines; a sign-in whose Cognito call does and
    # whose limit is then refunded; a diary whose limit, refund and NCTS call all do.
    budget = max(
        call + _database_worst_seconds(database),
        _cognito_call_worst_seconds(aws) + call,
        2 * call + _ncts_call_worst_seconds(partners),
    )
    assert budget < timeout, f"{service}: deadlines add up to {budget:.1f} s"


def test_the_export_lease_outlives_the_export_function() -> None:
    """A run killed at its timeout leaves its lease; the next run must not take it while the
    killed one could still be writing, and must get it back soon after."""
    timeouts = _timeouts("enf")
    from covidtracer.config import Env, read

    lease = read(EnfExportSettings, Env({})).lease_seconds
    assert timeouts["ExportKeys"] < lease <= timeouts["ExportKeys"] + 5 * 60


def test_the_jobs_have_room_for_their_work() -> None:
    enf, export = _timeouts("enf"), _timeouts("export")
    database, _, _ = _defaults()
    assert enf["Migrate"] >= 300  # index builds on the keys table; no statement timeout
    # The cleanup's deletes each wait at most the query deadline; a handful of them.
    assert enf["Cleanup"] >= 10 * database.query_timeout_ms / 1000
    assert export["ExportPersonalDetails"] >= 60
