"""The recorded account refuses what CloudFormation refuses (the deployment rehearsal relies on
it: tests/package/test_deploy_rehearsal.py). No network: botocore never sends a request."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError

from tracerstack.recorded_aws import NO_CHANGES, TEMPLATE_BODY_LIMIT, RecordedAws

REGION = "ap-southeast-2"
EXPORTER = {
    "Parameters": {"Stage": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "IsProd"},
    },
    "Outputs": {
        "BucketName": {
            "Value": {"Ref": "Bucket"},
            "Export": {"Name": {"Fn::Sub": "${Stage}-BucketName"}},
        }
    },
}
IMPORTER = {
    "Resources": {
        "Reader": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::ImportValue": "prod-BucketName"}},
        }
    }
}


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> RecordedAws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "recorded")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "recorded")
    return RecordedAws()


@pytest.fixture
def cloudformation(account: RecordedAws) -> Any:
    return account.install(boto3.Session()).client("cloudformation", region_name=REGION)


def _change_set(
    client: Any, stack: str, template: dict[str, Any], parameters: dict[str, Any], kind: str
) -> str:
    given = [
        {"ParameterKey": k, **({"UsePreviousValue": True} if v is None else {"ParameterValue": v})}
        for k, v in parameters.items()
    ]
    answer = client.create_change_set(
        StackName=stack,
        ChangeSetName="c",
        ChangeSetType=kind,
        TemplateBody=json.dumps(template),
        Parameters=given,
    )
    return str(answer["Id"])


def _deploy(
    client: Any, stack: str, template: dict[str, Any], parameters: dict[str, Any], kind: str
) -> None:
    change_set = _change_set(client, stack, template, parameters, kind)
    client.execute_change_set(ChangeSetName=change_set)


def test_an_absent_stack_is_described_as_cloudformation_says_it(cloudformation: Any) -> None:
    with pytest.raises(ClientError, match="Stack with id nope does not exist"):
        cloudformation.describe_stacks(StackName="nope")


def test_a_stack_is_created_once_and_then_only_updated(
    account: RecordedAws, cloudformation: Any
) -> None:
    with pytest.raises(ClientError, match=r"Stack \[s\] does not exist"):
        _change_set(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "UPDATE")
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "CREATE")
    with pytest.raises(ClientError, match="already exists"):
        _change_set(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "CREATE")
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "prod"}, "UPDATE")
    stack = cloudformation.describe_stacks(StackName="s")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    # The condition now holds, so the alarm exists; the history shows both states.
    assert [set(change.stacks["s"].resources) for change in account.history] == [
        {"Bucket"},
        {"Bucket", "Alarm"},
    ]


@pytest.mark.parametrize(
    ("parameters", "kind", "refusal"),
    [
        ({}, "CREATE", r"Parameters: \[Stage\] must have values"),
        ({"Stage": "dev", "Extra": "x"}, "CREATE", r"Parameters: \[Extra\] do not exist"),
        ({"Stage": "qa"}, "CREATE", "must be one of AllowedValues"),
        ({"Stage": None}, "CREATE", "Cannot specify usePreviousValue"),
    ],
)
def test_parameters_are_checked_as_cloudformation_checks_them(
    cloudformation: Any, parameters: dict[str, Any], kind: str, refusal: str
) -> None:
    with pytest.raises(ClientError, match=refusal):
        _change_set(cloudformation, "s", EXPORTER, parameters, kind)


def test_an_update_keeps_a_previous_value_only_when_asked(cloudformation: Any) -> None:
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "prod"}, "CREATE")
    queue = {"Type": "AWS::SQS::Queue"}
    grown = {**EXPORTER, "Resources": {**EXPORTER["Resources"], "Queue": queue}}
    _deploy(cloudformation, "s", grown, {"Stage": None}, "UPDATE")
    stack = cloudformation.describe_stacks(StackName="s")["Stacks"][0]
    assert stack["Parameters"] == [{"ParameterKey": "Stage", "ParameterValue": "prod"}]


def test_a_change_set_without_changes_fails_with_cloudformations_reason(
    cloudformation: Any,
) -> None:
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "CREATE")
    change_set = _change_set(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "UPDATE")
    with pytest.raises(WaiterError):
        cloudformation.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set)
    described = cloudformation.describe_change_set(ChangeSetName=change_set)
    assert (described["Status"], described["StatusReason"]) == ("FAILED", NO_CHANGES)


def test_a_parameter_that_removes_a_resource_shows_in_the_change_set(cloudformation: Any) -> None:
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "prod"}, "CREATE")
    change_set = _change_set(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "UPDATE")
    changes = cloudformation.describe_change_set(ChangeSetName=change_set)["Changes"]
    actions = {
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in changes
    }
    assert ("Remove", "Alarm") in actions


def test_a_template_body_over_cloudformations_limit_is_refused(cloudformation: Any) -> None:
    padded = {**EXPORTER, "Description": "x" * TEMPLATE_BODY_LIMIT}
    with pytest.raises(ClientError, match="less than or equal to 51200"):
        _change_set(cloudformation, "s", padded, {"Stage": "dev"}, "CREATE")


def test_an_import_needs_its_export_and_an_export_in_use_cannot_go(
    account: RecordedAws, cloudformation: Any
) -> None:
    with pytest.raises(ClientError, match="No export named prod-BucketName found"):
        _change_set(cloudformation, "reader", IMPORTER, {}, "CREATE")
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "prod"}, "CREATE")
    _deploy(cloudformation, "reader", IMPORTER, {}, "CREATE")
    # Renaming the export would pull it from under the reader: the update rolls back.
    _deploy(cloudformation, "s", EXPORTER, {"Stage": "dev"}, "UPDATE")
    stack = cloudformation.describe_stacks(StackName="s")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert stack["Outputs"][0]["ExportName"] == "prod-BucketName"
    with pytest.raises(ClientError, match="Export in use by reader"):
        cloudformation.delete_stack(StackName="s")


def test_only_a_function_a_stack_made_can_be_invoked(account: RecordedAws) -> None:
    session = account.install(boto3.Session())
    client = session.client("lambda", region_name=REGION)
    with pytest.raises(ClientError, match="Function not found"):
        client.invoke(FunctionName="f:prod", Payload=b"{}")
    function = {
        "Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "f"}}}
    }
    _deploy(session.client("cloudformation", region_name=REGION), "s", function, {}, "CREATE")
    answer = client.invoke(FunctionName="f:prod", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == {"ok": True}
    assert account.invocations == ["f:prod"]
