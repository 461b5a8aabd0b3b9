"""What IAM authorizes for each request the services make: botocore builds the real request
(stopped before it is sent), tracerstack.iam.requests says which actions on which ARNs."""

from __future__ import annotations

from typing import Any

import pytest

from tracerstack.iam.policy import Request
from tracerstack.iam.requests import ApiRequest, Unmapped, authorizations

ACCOUNT, REGION = "123456789012", "ap-southeast-2"
DATA_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data"


class _Sent(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


def _request(service: str, operation: str, region: str = REGION, **params: Any) -> ApiRequest:
    """The request botocore would send for ``operation``, as the endpoint receives it."""
    import boto3

    client = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=region
    ).client(service, endpoint_url="http://127.0.0.1:9")

    def stop(request: Any, **_: Any) -> None:
        raise _Sent(request)

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Sent) as sent:
        getattr(client, operation)(**params)
    prepared = sent.value.request
    scope = prepared.headers["Authorization"].decode().split("Credential=")[1].split("/")
    target = prepared.url.split("127.0.0.1:9", 1)[1]
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    return ApiRequest(
        method=prepared.method,
        target=target,
        headers={
            k.lower(): v.decode() if isinstance(v, bytes) else v
            for k, v in prepared.headers.items()
        },
        body=body if isinstance(body, bytes) else body.read(),
        service=scope[3],
        region=scope[2],
        account=ACCOUNT,
    )


class _Resources:
    """Stands in for moto's backends: secrets by name, keys by id, KMS-encrypted objects."""

    def secret_arn(self, region: str, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret_id}-AbCdEf"

    def kms_key_arn(self, region: str, key_id: str) -> str:
        return (
            key_id if key_id.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"
        )

    def object_kms_key(self, bucket: str, key: str) -> str | None:
        return DATA_KEY if bucket == "details-export" else None

    def bucket_kms_key(self, bucket: str) -> str | None:
        return DATA_KEY if bucket == "details-export" else None


def _checks(service: str, operation: str, **params: Any) -> list[Request]:
    return authorizations(_request(service, operation, **params), _Resources())


def _table(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


KEY = {"id": {"S": "x"}}


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("get_item", {"TableName": "users", "Key": KEY}, [("dynamodb:GetItem", _table("users"))]),
        ("describe_table", {"TableName": "users"}, [("dynamodb:DescribeTable", _table("users"))]),
        ("scan", {"TableName": "events"}, [("dynamodb:Scan", _table("events"))]),
        (
            "query",
            {
                "TableName": "events",
                "IndexName": "pending",
                "KeyConditionExpression": "p = :p",
                "ExpressionAttributeValues": {":p": {"S": "1"}},
            },
            [("dynamodb:Query", _table("events") + "/index/pending")],
        ),
        (
            "batch_get_item",
            {"RequestItems": {"a": {"Keys": [KEY]}, "b": {"Keys": [KEY]}}},
            [("dynamodb:BatchGetItem", _table("a")), ("dynamodb:BatchGetItem", _table("b"))],
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": "a",
                            "Key": KEY,
                            "ConditionExpression": "attribute_exists(id)",
                        }
                    },
                    {"Put": {"TableName": "b", "Item": KEY}},
                ]
            },
            [("dynamodb:ConditionCheckItem", _table("a")), ("dynamodb:PutItem", _table("b"))],
        ),
    ],
)
def test_dynamodb_is_authorized_on_each_table_and_index_it_touches(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(c.action, c.resource) for c in _checks("dynamodb", operation, **params)] == expected


def test_a_stream_read_is_authorized_on_the_stream() -> None:
    stream = _table("details") + "/stream/2021-10-04T21:05:12.000"
    [check] = _checks("dynamodbstreams", "get_records", ShardIterator=f"{stream}|1|abcdef")
    assert (check.action, check.resource) == ("dynamodb:GetRecords", stream)


FEED = "arn:aws:s3:::feed"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        # HeadBucket is s3:ListBucket (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html)
        ("head_bucket", {"Bucket": "feed"}, [("s3:ListBucket", FEED)]),
        ("list_objects_v2", {"Bucket": "feed", "Prefix": "events/"}, [("s3:ListBucket", FEED)]),
        (
            "head_object",
            {"Bucket": "feed", "Key": "a b.json"},
            [("s3:GetObject", f"{FEED}/a b.json")],
        ),
        ("get_object", {"Bucket": "feed", "Key": "f.json"}, [("s3:GetObject", f"{FEED}/f.json")]),
        (
            "put_object",
            {"Bucket": "feed", "Key": "f.json", "Body": b"{}"},
            [("s3:PutObject", f"{FEED}/f.json")],
        ),
        (
            "delete_object",
            {"Bucket": "feed", "Key": "f.json"},
            [("s3:DeleteObject", f"{FEED}/f.json")],
        ),
        (
            "delete_objects",
            {"Bucket": "feed", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b/c"}]}},
            [("s3:DeleteObject", f"{FEED}/a"), ("s3:DeleteObject", f"{FEED}/b/c")],
        ),
        # SSE-KMS: writing needs GenerateDataKey on the key, reading Decrypt
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
        (
            "put_object",
            {"Bucket": "details-export", "Key": "state.json", "Body": b"{}"},
            [
                ("s3:PutObject", "arn:aws:s3:::details-export/state.json"),
                ("kms:GenerateDataKey", DATA_KEY),
            ],
        ),
        (
            "put_object",
            {
                "Bucket": "feed",
                "Key": "x",
                "Body": b"{}",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": "other",
            },
            [
                ("s3:PutObject", f"{FEED}/x"),
                ("kms:GenerateDataKey", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/other"),
            ],
        ),
        (
            "get_object",
            {"Bucket": "details-export", "Key": "state.json"},
            [("s3:GetObject", "arn:aws:s3:::details-export/state.json"), ("kms:Decrypt", DATA_KEY)],
        ),
    ],
)
def test_s3_operations_need_the_actions_the_s3_guide_lists(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(c.action, c.resource) for c in _checks("s3", operation, **params)] == expected


def test_the_other_services_are_authorized_on_the_resource_their_parameter_names() -> None:
    secret = _checks("secretsmanager", "get_secret_value", SecretId="covidtracer/dev/ncts-api-key")
    key = _checks("kms", "sign", KeyId="signing", Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    pool = _checks("cognito-idp", "list_users", UserPoolId="ap-southeast-2_abc")
    stream = _checks(
        "firehose", "put_record_batch", DeliveryStreamName="events", Records=[{"Data": b"x"}]
    )
    parameter = _checks("ssm", "get_parameter", Name="/covidtracer/dev/enf/exposure-config")
    queue = _checks(
        "sqs",
        "delete_message_batch",
        QueueUrl=f"http://127.0.0.1:9/{ACCOUNT}/updates",
        Entries=[{"Id": "1", "ReceiptHandle": "r"}],
    )
    assert [(c.action, c.resource) for c in secret + key + pool + stream + parameter + queue] == [
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:covidtracer/dev/ncts-api-key-AbCdEf",
        ),
        ("kms:Sign", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/signing"),
        (
            "cognito-idp:ListUsers",
            f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/ap-southeast-2_abc",
        ),
        ("firehose:PutRecordBatch", f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/events"),
        (
            "ssm:GetParameter",
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/covidtracer/dev/enf/exposure-config",
        ),
        # A batch needs the single operation's action.
        ("sqs:DeleteMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:updates"),
    ]


def test_an_email_is_authorized_on_its_identity_with_its_from_address() -> None:
    [check] = authorizations(
        _request(
            "ses",
            "send_email",
            region="us-west-2",
            Source="NZ COVID Tracer <no-reply@tracing.example.nz>",
            Destination={"ToAddresses": ["a@example.nz"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
        ),
        _Resources(),
    )
    assert check == Request(
        "ses:SendEmail",
        f"arn:aws:ses:us-west-2:{ACCOUNT}:identity/no-reply@tracing.example.nz",
        {"ses:FromAddress": "no-reply@tracing.example.nz"},
    )


def test_a_metric_is_authorized_on_no_resource_with_its_namespace() -> None:
    [check] = _checks(
        "cloudwatch",
        "put_metric_data",
        Namespace="CovidTracer",
        MetricData=[{"MetricName": "EnfExportCompleted", "Value": 1.0}],
    )
    assert check == Request(
        "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "CovidTracer"}
    )


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "list_tables", {}),
        ("s3", "get_bucket_policy", {"Bucket": "feed"}),
        ("secretsmanager", "list_secrets", {}),
    ],
)
def test_an_operation_nobody_described_is_unmapped_never_guessed(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(Unmapped):
        _checks(service, operation, **params)
