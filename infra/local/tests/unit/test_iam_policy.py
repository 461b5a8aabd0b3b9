"""IAM's policy evaluation, as the local gate applies it: rule tables from AWS's documents
(tracerstack.iam.policy cites each)."""

from __future__ import annotations

from typing import Any

import pytest

from tracerstack.iam.policy import Decision, PolicyError, Request, decide

TABLE = "arn:aws:dynamodb:ap-southeast-2:1:table/covidtracer-dev-users"


def _policy(*statements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


def _allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


@pytest.mark.parametrize(
    ("statement", "request_", "decision"),
    [
        # Actions: exact, case-insensitive, wildcards.
        (_allow("dynamodb:GetItem", TABLE), Request("dynamodb:GetItem", TABLE), Decision.ALLOW),
        (_allow("DynamoDB:getitem", TABLE), Request("dynamodb:GetItem", TABLE), Decision.ALLOW),
        (_allow("dynamodb:Get*", TABLE), Request("dynamodb:GetItem", TABLE), Decision.ALLOW),
        (_allow("dynamodb:?etItem", TABLE), Request("dynamodb:GetItem", TABLE), Decision.ALLOW),
        (
            _allow("dynamodb:GetItem", TABLE),
            Request("dynamodb:Scan", TABLE),
            Decision.IMPLICIT_DENY,
        ),
        # Resources: exact, case-sensitive, wildcards across ':' and '/'.
        (
            _allow("dynamodb:GetItem", TABLE.upper()),
            Request("dynamodb:GetItem", TABLE),
            Decision.IMPLICIT_DENY,
        ),
        (
            _allow("dynamodb:Query", f"{TABLE}/index/*"),
            Request("dynamodb:Query", f"{TABLE}/index/email"),
            Decision.ALLOW,
        ),
        (
            _allow("dynamodb:Query", TABLE),
            Request("dynamodb:Query", f"{TABLE}/index/email"),
            Decision.IMPLICIT_DENY,
        ),
        (_allow("s3:GetObject", "*"), Request("s3:GetObject", "arn:aws:s3:::b/k"), Decision.ALLOW),
        (
            _allow("s3:GetObject", "arn:aws:s3:::b/*"),
            Request("s3:GetObject", "arn:aws:s3:::b/a/b.json"),
            Decision.ALLOW,
        ),
        (
            _allow("s3:ListBucket", "arn:aws:s3:::b/*"),
            Request("s3:ListBucket", "arn:aws:s3:::b"),
            Decision.IMPLICIT_DENY,
        ),
        # NotAction / NotResource.
        (
            {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"},
            Request("s3:GetObject", "arn:aws:s3:::b/k"),
            Decision.ALLOW,
        ),
        (
            {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"},
            Request("s3:DeleteObject", "arn:aws:s3:::b/k"),
            Decision.IMPLICIT_DENY,
        ),
        (
            {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"},
            Request("s3:GetObject", "arn:aws:s3:::secret/k"),
            Decision.IMPLICIT_DENY,
        ),
    ],
)
def test_actions_and_resources_match_as_iam_documents(
    statement: dict[str, Any], request_: Request, decision: Decision
) -> None:
    assert decide(_policy(statement), request_) is decision


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policies = _policy(
        _allow("s3:*", "*"),
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
    )
    assert (
        decide(policies, Request("s3:DeleteObject", "arn:aws:s3:::b/k")) is Decision.EXPLICIT_DENY
    )
    assert decide(policies, Request("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.ALLOW


def test_no_policy_is_an_implicit_deny() -> None:
    assert decide([], Request("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.IMPLICIT_DENY


NAMESPACE = {"StringEquals": {"cloudwatch:namespace": "CovidTracer"}}


@pytest.mark.parametrize(
    ("condition", "context", "decision"),
    [
        (NAMESPACE, {"cloudwatch:namespace": "CovidTracer"}, Decision.ALLOW),
        # Condition key names are case-insensitive; values of StringEquals are not.
        (NAMESPACE, {"CloudWatch:Namespace": "CovidTracer"}, Decision.ALLOW),
        (NAMESPACE, {"cloudwatch:namespace": "covidtracer"}, Decision.IMPLICIT_DENY),
        # A key missing from the request fails a condition (not a deny: another may allow).
        (NAMESPACE, {}, Decision.IMPLICIT_DENY),
        ({"StringEqualsIfExists": {"cloudwatch:namespace": "X"}}, {}, Decision.ALLOW),
        ({"StringNotEquals": {"cloudwatch:namespace": "X"}}, {}, Decision.ALLOW),
        (
            {"StringNotEquals": {"cloudwatch:namespace": "X"}},
            {"cloudwatch:namespace": "X"},
            Decision.IMPLICIT_DENY,
        ),
        (
            {"StringLike": {"ses:FromAddress": "*@tracing.example.nz"}},
            {"ses:FromAddress": "no-reply@tracing.example.nz"},
            Decision.ALLOW,
        ),
        # Values of one key: any; keys and operators: all.
        (
            {"StringEquals": {"cloudwatch:namespace": ["A", "CovidTracer"]}},
            {"cloudwatch:namespace": "CovidTracer"},
            Decision.ALLOW,
        ),
        (
            {"StringEquals": {"cloudwatch:namespace": "CovidTracer", "aws:SourceVpc": "vpc-1"}},
            {"cloudwatch:namespace": "CovidTracer"},
            Decision.IMPLICIT_DENY,
        ),
        ({"Null": {"aws:SourceVpc": "true"}}, {}, Decision.ALLOW),
        ({"Null": {"aws:SourceVpc": "false"}}, {}, Decision.IMPLICIT_DENY),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["a"]},
            Decision.ALLOW,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}},
            {"aws:TagKeys": ["a", "c"]},
            Decision.IMPLICIT_DENY,
        ),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}},
            {"aws:TagKeys": ["a", "c"]},
            Decision.ALLOW,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {}, Decision.IMPLICIT_DENY),
    ],
)
def test_conditions_hold_as_iam_documents(
    condition: dict[str, Any], context: dict[str, Any], decision: Decision
) -> None:
    policies = _policy(_allow("cloudwatch:PutMetricData", "*", condition))
    assert decide(policies, Request("cloudwatch:PutMetricData", "*", context)) is decision


def test_a_deny_whose_condition_fails_does_not_deny() -> None:
    # A statement whose condition does not hold does not apply, whatever its effect (moto
    # turns an Allow whose condition fails into a deny).
    policies = _policy(
        _allow("cloudwatch:PutMetricData", "*"),
        {
            "Effect": "Deny",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Other"}},
        },
    )
    request = Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "CovidTracer"})
    assert decide(policies, request) is Decision.ALLOW


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        {"StringEquals": {"aws:TagKeys": "a"}},  # multivalued key without a set operator
    ],
)
def test_what_the_evaluator_cannot_judge_is_an_error_never_a_match(
    condition: dict[str, Any],
) -> None:
    policies = _policy(_allow("s3:GetObject", "*", condition))
    request = Request(
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        {"aws:TagKeys": ["a", "b"]} | {"aws:MultiFactorAuthAge": "1"},
    )
    with pytest.raises(PolicyError):
        decide(policies, request)
