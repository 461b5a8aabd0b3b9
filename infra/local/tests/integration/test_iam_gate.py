"""moto over HTTP with IAM enforced: requests signed with a role's STS credentials are
authorized as AWS would, answered in each service's own error shape, and recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tracerstack.bootstrap import Bootstrap
from tracerstack.iam.roles import assume_role, credentials, resolved_policy


def _role(aws_stack: Bootstrap, *statements: dict[str, Any]) -> boto3.session.Session:
    """A session of a new role allowed exactly ``statements``."""
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    env = assume_role(aws_stack, f"test-{uuid.uuid4().hex[:12]}", policy)
    return _session(env, aws_stack.region)


def _session(env: dict[str, str], region: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=region,
    )


def _allow(actions: list[str], resource: Any, **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def test_a_role_may_do_exactly_what_its_policy_allows_on_the_resources_it_names(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    out = aws_stack.outputs
    users = f"arn:aws:dynamodb:{aws_stack.region}:123456789012:table/{out['UsersTable']}"
    role = _role(aws_stack, _allow(["dynamodb:GetItem"], users))
    ddb = role.client("dynamodb", endpoint_url=aws_stack.endpoint_url)
    key = {"userId": {"S": "nobody"}}

    assert "Item" not in ddb.get_item(TableName=out["UsersTable"], Key=key)
    # Another table, another action: both refused, though moto alone would check neither.
    other = _code(lambda: ddb.get_item(TableName=out["RateLimitsTable"], Key={"key": {"S": "k"}}))
    scan = _code(lambda: ddb.scan(TableName=out["UsersTable"]))

    assert (other, scan) == ("AccessDeniedException", "AccessDeniedException")
    assert [(d.action, d.resource.rpartition("/")[2]) for d in iam_denials()] == [
        ("dynamodb:GetItem", out["RateLimitsTable"]),
        ("dynamodb:Scan", out["UsersTable"]),
    ]


def test_each_protocol_answers_a_refusal_in_its_own_error_shape(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    role = _role(aws_stack, _allow(["sts:GetCallerIdentity"], "*"))
    endpoint, out = aws_stack.endpoint_url, aws_stack.outputs

    def client(service: str, region: str | None = None) -> Any:
        return role.client(service, endpoint_url=endpoint, region_name=region)

    codes = {
        "json": _code(
            lambda: client("secretsmanager").get_secret_value(SecretId=out["NctsApiKeySecretArn"])
        ),
        "query": _code(
            lambda: client("ses", aws_stack.ses_region).send_email(
                Source=out["SenderAddress"],
                Destination={"ToAddresses": ["a@example.nz"]},
                Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
            )
        ),
        "rest-xml": _code(
            lambda: client("s3").get_object(Bucket=out["FeedBucket"], Key="anything")
        ),
        "json, query-compatible": _code(
            lambda: client("cloudwatch").put_metric_data(
                Namespace="CovidTracer", MetricData=[{"MetricName": "m", "Value": 1.0}]
            )
        ),
    }
    assert codes == {
        "json": "AccessDeniedException",
        "query": "AccessDenied",
        "rest-xml": "AccessDenied",
        "json, query-compatible": "AccessDenied",
    }
    assert len(iam_denials()) == 4
    # GetCallerIdentity needs no permission at all.
    assert (
        client("sts")
        .get_caller_identity()["Arn"]
        .startswith("arn:aws:sts::123456789012:assumed-role/test-")
    )


def test_a_key_moto_never_issued_a_missing_token_and_a_wrong_secret_are_refused(
    aws_stack: Bootstrap,
) -> None:
    good = assume_role(
        aws_stack,
        f"test-{uuid.uuid4().hex[:12]}",
        {"Version": "2012-10-17", "Statement": [_allow(["sts:GetCallerIdentity"], "*")]},
    )
    region, endpoint = aws_stack.region, aws_stack.endpoint_url
    table = aws_stack.outputs["UsersTable"]

    def describe(env: dict[str, str]) -> str:
        ddb = _session(env, region).client("dynamodb", endpoint_url=endpoint)
        return _code(lambda: ddb.describe_table(TableName=table))

    unknown = {"AWS_ACCESS_KEY_ID": "ASIANOBODYISSUED", "AWS_SECRET_ACCESS_KEY": "x"}
    no_token = {k: v for k, v in good.items() if k != "AWS_SESSION_TOKEN"}
    wrong_secret = {**good, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    assert describe(unknown) == "UnrecognizedClientException"
    assert describe(no_token) == "UnrecognizedClientException"
    assert describe(wrong_secret) == "InvalidSignatureException"


def test_a_missing_object_is_404_with_s3_list_bucket_and_403_without(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html ("Permissions")
    bucket = aws_stack.outputs["FeedBucket"]
    read = _allow(["s3:GetObject"], f"arn:aws:s3:::{bucket}/*")
    listing = _allow(["s3:ListBucket"], f"arn:aws:s3:::{bucket}")
    without = _role(aws_stack, read).client("s3", endpoint_url=aws_stack.endpoint_url)
    with_list = _role(aws_stack, read, listing).client("s3", endpoint_url=aws_stack.endpoint_url)

    assert _code(lambda: without.get_object(Bucket=bucket, Key="missing.json")) == "AccessDenied"
    assert _code(lambda: without.head_object(Bucket=bucket, Key="missing.json")) == "403"
    assert _code(lambda: with_list.get_object(Bucket=bucket, Key="missing.json")) == "NoSuchKey"
    assert _code(lambda: with_list.head_object(Bucket=bucket, Key="missing.json")) == "404"
    # HeadBucket is s3:ListBucket (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html)
    assert _code(lambda: without.head_bucket(Bucket=bucket)) == "403"
    with_list.head_bucket(Bucket=bucket)
    # Not a refusal of an action the role asked for: S3's way of answering it.
    assert [d.action for d in iam_denials()] == ["s3:ListBucket"]


def test_writing_and_reading_an_sse_kms_object_needs_the_key(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
    out = aws_stack.outputs
    bucket = out["UserDetailsBucket"]  # SSE-KMS under the data key by default
    objects = _allow(["s3:PutObject", "s3:GetObject"], f"arn:aws:s3:::{bucket}/*")
    keyless = _role(aws_stack, objects).client("s3", endpoint_url=aws_stack.endpoint_url)
    keyed = _role(
        aws_stack, objects, _allow(["kms:GenerateDataKey", "kms:Decrypt"], out["DataKeyArn"])
    ).client("s3", endpoint_url=aws_stack.endpoint_url)

    assert _code(lambda: keyless.put_object(Bucket=bucket, Key="k.json", Body=b"{}")) == (
        "AccessDenied"
    )
    keyed.put_object(Bucket=bucket, Key="k.json", Body=b"{}")
    assert keyed.get_object(Bucket=bucket, Key="k.json")["Body"].read() == b"{}"
    assert _code(lambda: keyless.get_object(Bucket=bucket, Key="k.json")) == "AccessDenied"
    assert [(d.action, d.resource) for d in iam_denials()] == [
        ("kms:GenerateDataKey", out["DataKeyArn"]),
        ("kms:Decrypt", out["DataKeyArn"]),
    ]


def test_a_condition_narrows_an_action_that_takes_no_resource(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    namespace = {"StringEquals": {"cloudwatch:namespace": "CovidTracer"}}
    role = _role(aws_stack, _allow(["cloudwatch:PutMetricData"], "*", **namespace))
    cloudwatch = role.client("cloudwatch", endpoint_url=aws_stack.endpoint_url)
    datum = [{"MetricName": "EnfExportCompleted", "Value": 1.0}]

    cloudwatch.put_metric_data(Namespace="CovidTracer", MetricData=datum)
    assert _code(lambda: cloudwatch.put_metric_data(Namespace="Other", MetricData=datum)) == (
        "AccessDenied"
    )
    assert [d.action for d in iam_denials()] == ["cloudwatch:PutMetricData"]


def test_an_operation_nobody_described_is_refused_and_says_where_to_describe_it(
    aws_stack: Bootstrap, iam_denials: Callable[[], list[Any]]
) -> None:
    role = _role(aws_stack, _allow(["dynamodb:*"], "*"))
    ddb = role.client("dynamodb", endpoint_url=aws_stack.endpoint_url)
    assert _code(ddb.list_tables) == "AccessDeniedException"
    [denial] = iam_denials()
    assert "tracerstack.iam.requests" in denial.reason and "ListTables" in denial.action


@pytest.mark.parametrize("service", ["auth", "details", "export", "enf"])
def test_each_service_role_is_its_packaged_policy_resolved_to_the_stacks_arns(
    aws_stack: Bootstrap, service: str
) -> None:
    policy = resolved_policy(service, aws_stack, "local")
    text = str(policy)
    assert "${" not in text and "Fn::" not in text
    env = credentials(aws_stack, service, "local")
    iam = aws_stack.client("iam")
    [name] = iam.list_role_policies(RoleName=f"covidtracer-{aws_stack.stage}-{service}")[
        "PolicyNames"
    ]
    stored = iam.get_role_policy(
        RoleName=f"covidtracer-{aws_stack.stage}-{service}", PolicyName=name
    )["PolicyDocument"]
    assert stored == policy
    caller = _session(env, aws_stack.region).client("sts", endpoint_url=aws_stack.endpoint_url)
    assert (
        f"assumed-role/covidtracer-{aws_stack.stage}-{service}/"
        in (caller.get_caller_identity()["Arn"])
    )
