"""`make deploy-all`, rehearsed: two releases of every stack and service, each from a fresh
runner, against a recorded account that keeps its stacks between them (tracerstack.recorded_aws).

Each release runs the deployment's own plan with a fresh boto3 session and an empty
``deploy.Context``: nothing but the account carries over, as on a new CI runner. The packages
are what `make package` built (build/), relabelled per release so that the second release
really changes every stack (a new version is a new tag on each).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from tracerstack import deploy
from tracerstack.package import BUILD, SERVICE_NAMES
from tracerstack.recorded_aws import Change, RecordedAws

STAGE = "prod"
IDENTITY = f"covidtracer-{STAGE}-identity"
ANALYTICS = f"covidtracer-{STAGE}-analytics"
AUTH = f"covidtracer-{STAGE}-service-auth"
EXPORT = f"covidtracer-{STAGE}-service-export"
# The user pool's LambdaConfig keys; each is also the logical id of the auth function.
TRIGGERS = (
    "PreSignUp",
    "DefineAuthChallenge",
    "CreateAuthChallenge",
    "VerifyAuthChallengeResponse",
    "PostAuthentication",
)

Release = Callable[..., list[str]]


def _stage() -> deploy.StageConfig:
    """prod, with the operator's inputs filled in as a real deployment requires."""
    stage = deploy.StageConfig.load(STAGE)
    filled = {name: f"{name.lower()}-value" for name in stage.enf_environment}
    return deploy.StageConfig(
        **{**vars(stage), "enf_environment": filled, "ncts_account_id": "123456789012"}
    )


@pytest.fixture
def account() -> RecordedAws:
    return RecordedAws()


@pytest.fixture
def release(account: RecordedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Release:
    """Deploys everything as release ``version`` from a fresh runner (with ``plan_only``, as
    `make deploy-all PLAN=1` does); returns the log."""
    built = deploy.load_package("auth").version
    load_package = deploy.load_package
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rehearsal")  # the runner's role, as OIDC sets it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rehearsal")

    def run(version: str, *, plan_only: bool = False) -> list[str]:
        build = tmp_path / version
        for service in SERVICE_NAMES:
            (build / service).mkdir(parents=True)
            text = (BUILD / service / "template.json").read_text()
            (build / service / "template.json").write_text(text.replace(built, version))
            release = {"service": service, "version": version}
            (build / service / "release.json").write_text(json.dumps(release))
            shutil.copyfile(BUILD / service / "deployment.zip", build / service / "deployment.zip")
        monkeypatch.setattr(deploy, "load_package", lambda service: load_package(service, build))
        # A new runner: no boto3 session, no outputs, nothing on disk but the checkout.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", account.install(boto3.Session()))
        lines: list[str] = []
        ctx = deploy.Context(stage=_stage(), version=version, plan_only=plan_only, log=lines.append)
        deploy.execute(deploy.plan(), ctx)
        return lines

    return run


def _triggers(change: Change) -> dict[str, str]:
    identity = change.stacks.get(IDENTITY)
    config = identity.property("UserPool", "LambdaConfig") if identity else None
    return dict(config or {})


def _schedule_target(change: Change) -> str | None:
    analytics = change.stacks.get(ANALYTICS)
    target = analytics.property("UsageReportSchedule", "Target") if analytics else None
    return target["Arn"] if target else None


def _usage_report_arn(account: RecordedAws) -> str:
    export = account.stack(EXPORT)
    assert export is not None
    return export.outputs()["UsageReportFunctionArn"][0]


def test_the_first_release_of_a_stage_ends_with_the_triggers_and_the_schedule_wired(
    account: RecordedAws, release: Release
) -> None:
    release("v1.0.0")
    final = account.history[-1]
    assert set(_triggers(final)) == set(TRIGGERS)
    assert _schedule_target(final) == _usage_report_arn(account)
    assert account.invocations == [f"covidtracer-enf-{STAGE}-migrate:{STAGE}"]


def test_a_second_release_from_a_fresh_runner_never_unwires_sign_in_or_the_usage_report(
    account: RecordedAws, release: Release
) -> None:
    """Prod sign-in stays up through a release: after no stack update of a release does the
    user pool lack a trigger, nor the analytics stack its schedule."""
    release("v1.0.0")
    first = len(account.history)
    triggers, schedule = _triggers(account.history[-1]), _schedule_target(account.history[-1])
    release("v1.1.0")
    second = account.history[first:]
    assert {IDENTITY, ANALYTICS, AUTH, EXPORT} <= {change.stack for change in second}
    unwired = [
        f"after updating {change.stack}: "
        f"triggers {sorted(_triggers(change))}, schedule {_schedule_target(change)!r}"
        for change in second
        if _triggers(change) != triggers or _schedule_target(change) != schedule
    ]
    assert unwired == []
    assert schedule == _usage_report_arn(account)


def test_cognito_calls_a_trigger_only_while_the_auth_stack_lets_it(
    account: RecordedAws, release: Release
) -> None:
    """In every state of both releases, each trigger the user pool names is the stage alias
    of the auth stack's function of that name, and Cognito may invoke it."""
    release("v1.0.0")
    release("v1.1.0")
    for change in account.history:
        triggers = _triggers(change)
        if not triggers:
            continue
        auth = change.stacks.get(AUTH)
        assert auth is not None, f"after updating {change.stack}"
        for trigger, arn in triggers.items():
            function = auth.property(trigger, "FunctionName")
            assert arn.endswith(f":function:{function}:{STAGE}"), trigger
            permission = f"{trigger}CognitoPermission"
            assert auth.property(permission, "Principal") == "cognito-idp.amazonaws.com"


def test_the_pipelines_plan_step_reads_the_stage_and_changes_nothing(
    account: RecordedAws, release: Release
) -> None:
    release("v1.0.0")
    changes = len(account.history)
    lines = release("v1.1.0", plan_only=True)
    assert len(account.history) == changes
    assert account.change_sets == {}
    identity = f"  stack {IDENTITY} in ap-southeast-2 from infra/templates/identity.yaml with "
    assert identity + '{"Stage": "prod", "AuthTriggersDeployed": "true"}' in lines
    assert "  already wired: the identity stack above kept the triggers" in lines
