from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tracerstack import TEMPLATES, cfn
from tracerstack.bootstrap import _CREATORS, SKIPPED_TYPES, TEMPLATE_ORDER


def _resolver(**refs: str) -> cfn.Resolver:
    return cfn.Resolver(
        parameters={"Stage": "dev", "AWS::AccountId": "111"},
        refs=refs,
        attributes={"Queue": {"Arn": "arn:aws:sqs:q"}},
        exports={"covidtracer-dev-Table": "tbl"},
        conditions={"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Stage"}, "dev"),
        ({"Fn::Sub": "covidtracer-${Stage}-feed-${AWS::AccountId}"}, "covidtracer-dev-feed-111"),
        ({"Fn::Sub": "${Queue.Arn}/x"}, "arn:aws:sqs:q/x"),
        ({"Fn::Sub": ["${A}-${Stage}", {"A": "a"}]}, "a-dev"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:q"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}, "a/dev"),
        ({"Fn::ImportValue": {"Fn::Sub": "covidtracer-${Stage}-Table"}}, "tbl"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "small"),
        ({"deep": [{"Ref": "Stage"}]}, {"deep": ["dev"]}),
        ({"a": 1, "b": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}}, {"a": 1}),
    ],
)
def test_intrinsic_functions_resolve(value: object, expected: object) -> None:
    assert _resolver()(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Fn::GetAtt": ["Queue", "Url"]},
        {"Fn::ImportValue": "nope"},
        {"Fn::Base64": "x"},
    ],
)
def test_what_cannot_be_resolved_is_an_error_not_a_guess(value: object) -> None:
    with pytest.raises(cfn.TemplateError):
        _resolver()(value)


def test_yaml_short_forms_load_as_intrinsic_functions(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      N: !Sub a-${Stage}\n      Q: !GetAtt Queue.Arn\n      R: !Ref Stage\n"
    )
    properties = cfn.load(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "N": {"Fn::Sub": "a-${Stage}"},
        "Q": {"Fn::GetAtt": ["Queue", "Arn"]},
        "R": {"Ref": "Stage"},
    }


def test_every_resource_type_in_the_templates_is_created_or_knowingly_skipped() -> None:
    types = {
        resource["Type"]
        for name in TEMPLATE_ORDER
        for resource in cfn.load(TEMPLATES / f"{name}.yaml")["Resources"].values()
    }
    assert types <= set(_CREATORS) | SKIPPED_TYPES


# ---------------------------------------------------------------------------------------------
# AWS's documented rules, read off the source templates (issue 18; docs/operations.md §12).


def _resources(template: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = cfn.load(TEMPLATES / f"{template}.yaml")["Resources"]
    return {k: r for k, r in resources.items() if kind is None or r["Type"] == kind}


def _all_resources(kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{path.stem}.{name}": resource
        for path in sorted(TEMPLATES.glob("*.yaml"))
        for name, resource in _resources(path.stem, kind).items()
    }


# The interface and gateway endpoints AWS offers for the APIs the ENF Lambdas call, each with
# the page that names it. A name not in this list does not exist as far as this test knows
# (issue 18 item 1: `sms-voice` was never an endpoint service), so adding an endpoint means
# adding its documented name here.
VPC_ENDPOINT_SERVICES = {
    # https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
    "s3": ("Gateway", "s3"),
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html
    "secretsmanager": ("Interface", "secretsmanager"),
    # https://docs.aws.amazon.com/kms/latest/developerguide/kms-vpc-endpoint.html
    "kms": ("Interface", "kms"),
    # AWS End User Messaging SMS: "Create an interface endpoint ... using the following service
    # name: com.amazonaws.region.pinpoint-sms-voice-v2"
    # https://docs.aws.amazon.com/sms-voice/latest/userguide/vpc-interface-endpoints.html
    "pinpoint-sms-voice-v2": ("Interface", "pinpoint-sms-voice-v2"),
    # https://docs.aws.amazon.com/firehose/latest/dev/vpc.html
    "kinesis-firehose": ("Interface", "firehose"),
    # https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html
    "ssm": ("Interface", "ssm"),
    # CloudWatch metrics (PutMetricData):
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-interface-VPC.html
    "monitoring": ("Interface", "cloudwatch"),
}


def test_every_vpc_endpoint_names_a_service_aws_documents() -> None:
    endpoints = _resources("network", "AWS::EC2::VPCEndpoint")
    assert endpoints
    for name, endpoint in endpoints.items():
        props = endpoint["Properties"]
        service = props["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        assert service in VPC_ENDPOINT_SERVICES, f"{name}: {service} is not a documented endpoint"
        assert props["VpcEndpointType"] == VPC_ENDPOINT_SERVICES[service][0], name


def test_every_aws_api_the_enf_functions_call_has_an_endpoint_in_their_vpc() -> None:
    """The network stack promises the in-VPC Lambdas reach every AWS API without the NAT."""
    from tracerstack import SERVICES, vendor

    sources = vendor.files_for(vendor.closure(SERVICES / "enf" / "app.py"))
    called: set[str] = set()
    for relative in sources:
        if relative.suffix == ".py":
            text = (vendor.SOURCE / relative).read_text()
            called |= set(re.findall(r"""\bclient\(\s*["']([a-z0-9-]+)["']""", text))
    boto3_names = {name for _, name in VPC_ENDPOINT_SERVICES.values()}
    endpoints = {
        e["Properties"]["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        for e in _resources("network", "AWS::EC2::VPCEndpoint").values()
    }
    assert "pinpoint-sms-voice-v2" in called and "kms" in called
    # aws.py's getters for DynamoDB, SQS, Cognito and SES ship everywhere; ENF never calls them.
    assert called - {"dynamodb", "sqs", "cognito-idp", "ses"} <= boto3_names
    for service, (_, boto3_name) in VPC_ENDPOINT_SERVICES.items():
        if boto3_name in called:
            assert service in endpoints, f"no VPC endpoint for {boto3_name}"
