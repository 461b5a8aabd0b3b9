"""What IAM authorizes for one AWS API request: its actions, the resources' ARNs, the
condition keys — for every operation the services' code makes.

Each service's table follows AWS's Service Authorization Reference ("Actions, resources, and
condition keys for <service>", https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html)
and the API references where an operation needs more than its own action:

- S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html):
  ``HeadBucket`` and ``ListObjectsV2`` are ``s3:ListBucket`` on the bucket; ``HeadObject`` is
  ``s3:GetObject``; ``DeleteObjects`` is ``s3:DeleteObject`` on each key. An object written
  or read under SSE-KMS also needs ``kms:GenerateDataKey`` / ``kms:Decrypt`` on its key
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
- DynamoDB: a ``Query``/``Scan`` of an index is authorized on ``table/T/index/I``; batch and
  transaction operations on every table they touch, ``TransactWriteItems`` with each item's
  own action (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html);
  the Streams API on the stream's ARN.
- SQS: the ``…Batch`` operations need the single operation's action
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
- SES ``SendEmail``/``SendRawEmail``: the sending identity's ARN, with ``ses:FromAddress``
  (https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html).
- CloudWatch ``PutMetricData``: no resource (``*``), with ``cloudwatch:namespace``
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).

An operation missing from these tables raises ``Unmapped``: the gate refuses it rather than
guess, so a new AWS call fails its tests until someone states what IAM needs for it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tracerstack.iam.policy import Request


class Unmapped(LookupError):
    """The request's operation has no entry here: nobody has said what IAM needs for it."""


class Resources(Protocol):
    """Facts about existing resources that an authorization depends on (the moto backends)."""

    def secret_arn(self, region: str, secret_id: str) -> str: ...
    def kms_key_arn(self, region: str, key_id: str) -> str: ...
    def object_kms_key(self, bucket: str, key: str) -> str | None:
        """The KMS key ARN an existing object is encrypted under, if any."""

    def bucket_kms_key(self, bucket: str) -> str | None:
        """The KMS key ARN a bucket encrypts new objects under by default, if any."""


@dataclass(frozen=True)
class ApiRequest:
    """One signed HTTP request to an AWS API, as the endpoint received it."""

    method: str
    target: str  # the raw path and query string
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    service: str  # the signing name from the credential scope (``dynamodb``, ``s3`` …)
    region: str  # likewise
    account: str
    query: dict[str, list[str]] = field(init=False)
    path: str = field(init=False)

    def __post_init__(self) -> None:
        split = urlsplit(self.target)
        object.__setattr__(self, "path", unquote(split.path))
        object.__setattr__(self, "query", parse_qs(split.query, keep_blank_values=True))

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


def authorizations(request: ApiRequest, resources: Resources) -> list[Request]:
    """Every authorization IAM makes for ``request``; all must be allowed.

    Raises ``Unmapped`` for an operation not described here.
    """
    if request.service == "s3":
        return _s3(request, resources)
    operation, params = _operation(request)
    handler = _SERVICES.get(request.service)
    if handler is None:
        raise Unmapped(f"{request.service}:{operation}")
    return handler(request, operation, params, resources)


def operation_name(request: ApiRequest) -> str:
    """``service:Operation`` of a request, for messages."""
    if request.service == "s3":
        return f"s3 {request.method} {request.path}"
    return f"{request.service}:{_operation(request)[0]}"


def _operation(request: ApiRequest) -> tuple[str, dict[str, Any]]:
    """The operation and its parameters, in the JSON or the query protocol (botocore's
    choices for the services used here)."""
    target = request.headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2], request.json()
    form = request.form() if request.method == "POST" else {}
    form.update({k: v[0] for k, v in request.query.items()})
    if "Action" in form:
        return form.pop("Action"), form
    raise Unmapped(f"{request.service} {request.method} {request.path}")


def _arn(request: ApiRequest, service: str, resource: str, region: str | None = None) -> str:
    return f"arn:aws:{service}:{region or request.region}:{request.account}:{resource}"


Handler = Callable[[ApiRequest, str, dict[str, Any], Resources], list[Request]]


# ---------------------------------------------------------------------------- DynamoDB

_TRANSACT_WRITE_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}


def _dynamodb(
    request: ApiRequest, operation: str, params: dict[str, Any], _: Resources
) -> list[Request]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else _arn(request, "dynamodb", f"table/{name}")

    if operation in ("DescribeStream", "GetShardIterator"):
        return [Request(f"dynamodb:{operation}", params["StreamArn"])]
    if operation == "GetRecords":
        # moto's iterators are "<stream arn>|1|<id>"; AWS authorizes on the stream's ARN.
        return [Request("dynamodb:GetRecords", params["ShardIterator"].split("|", 1)[0])]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
    if operation == "TransactWriteItems":
        return [
            Request(f"dynamodb:{_TRANSACT_WRITE_ACTIONS[kind]}", table(spec["TableName"]))
            for item in params["TransactItems"]
            for kind, spec in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            Request("dynamodb:GetItem", table(item["Get"]["TableName"]))
            for item in params["TransactItems"]
        ]
    if "TableName" not in params:
        raise Unmapped(f"dynamodb:{operation}")
    resource = table(params["TableName"])
    if operation in ("Query", "Scan") and params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return [Request(f"dynamodb:{operation}", resource)]


# ---------------------------------------------------------------------------- SQS

_SQS_BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(
    request: ApiRequest, operation: str, params: dict[str, Any], _: Resources
) -> list[Request]:
    if "QueueUrl" in params:
        account, name = urlsplit(params["QueueUrl"]).path.strip("/").split("/")[-2:]
    elif "QueueName" in params:
        account, name = request.account, params["QueueName"]
    else:
        raise Unmapped(f"sqs:{operation}")
    action = _SQS_BATCHES.get(operation, operation)
    return [Request(f"sqs:{action}", f"arn:aws:sqs:{request.region}:{account}:{name}")]


# ---------------------------------------------------------------------------- the rest


def _by_parameter(
    prefix: str, parameter: str, to_arn: Callable[[ApiRequest, str, Resources], str]
) -> Handler:
    """Operations authorized on the resource one parameter names."""

    def handler(
        request: ApiRequest, operation: str, params: dict[str, Any], resources: Resources
    ) -> list[Request]:
        if parameter not in params:
            raise Unmapped(f"{prefix}:{operation}")
        return [Request(f"{prefix}:{operation}", to_arn(request, params[parameter], resources))]

    return handler


def _secret(request: ApiRequest, secret_id: str, resources: Resources) -> str:
    return resources.secret_arn(request.region, secret_id)


def _kms_key(request: ApiRequest, key_id: str, resources: Resources) -> str:
    return resources.kms_key_arn(request.region, key_id)


def _user_pool(request: ApiRequest, pool_id: str, _: Resources) -> str:
    return _arn(request, "cognito-idp", f"userpool/{pool_id}")


def _delivery_stream(request: ApiRequest, name: str, _: Resources) -> str:
    return _arn(request, "firehose", f"deliverystream/{name}")


def _parameter(request: ApiRequest, name: str, _: Resources) -> str:
    # "/a/b" is arn:…:parameter/a/b (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html)
    return _arn(request, "ssm", f"parameter/{name.lstrip('/')}")


def _ses(
    request: ApiRequest, operation: str, params: dict[str, Any], _: Resources
) -> list[Request]:
    if operation not in ("SendEmail", "SendRawEmail"):
        raise Unmapped(f"ses:{operation}")
    source = params.get("Source", "")
    address = source.rpartition("<")[2].rstrip(">").strip()
    return [
        Request(
            f"ses:{operation}",
            _arn(request, "ses", f"identity/{address}"),
            {"ses:FromAddress": address},
        )
    ]


def _cloudwatch(
    request: ApiRequest, operation: str, params: dict[str, Any], _: Resources
) -> list[Request]:
    if operation != "PutMetricData":
        raise Unmapped(f"cloudwatch:{operation}")
    return [Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params["Namespace"]})]


def _sts(
    request: ApiRequest, operation: str, params: dict[str, Any], _: Resources
) -> list[Request]:
    if operation == "GetCallerIdentity":
        return []  # needs no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)
    raise Unmapped(f"sts:{operation}")


_SERVICES: dict[str, Handler] = {
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "secretsmanager": _by_parameter("secretsmanager", "SecretId", _secret),
    "kms": _by_parameter("kms", "KeyId", _kms_key),
    "cognito-idp": _by_parameter("cognito-idp", "UserPoolId", _user_pool),
    "firehose": _by_parameter("firehose", "DeliveryStreamName", _delivery_stream),
    "ssm": _by_parameter("ssm", "Name", _parameter),
    "ses": _ses,
    "monitoring": _cloudwatch,
    "sts": _sts,
}


# ---------------------------------------------------------------------------- S3


def _s3(request: ApiRequest, resources: Resources) -> list[Request]:
    bucket, _, key = request.path.lstrip("/").partition("/")
    if not bucket:
        raise Unmapped("s3:ListBuckets")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    # botocore may name the operation in the query (x-id); it changes nothing IAM checks.
    method, query = request.method, {k: v for k, v in request.query.items() if k != "x-id"}
    if not key:
        if method == "HEAD" or (
            method == "GET"
            and _only(
                query,
                "list-type",
                "prefix",
                "continuation-token",
                "delimiter",
                "max-keys",
                "start-after",
                "encoding-type",
                "fetch-owner",
            )
        ):
            prefix = query.get("prefix", [""])[0]
            return [Request("s3:ListBucket", bucket_arn, {"s3:prefix": prefix})]
        if method == "POST" and "delete" in query:
            return [
                Request("s3:DeleteObject", f"{bucket_arn}/{deleted}")
                for deleted in _deleted_keys(request.body)
            ]
        raise Unmapped(f"s3 {method} bucket ?{'&'.join(sorted(query))}")
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD") and _only(query, "partNumber", "response-content-type"):
        checks = [Request("s3:GetObject", object_arn)]
        kms_key = resources.object_kms_key(bucket, key)
        return checks + ([Request("kms:Decrypt", kms_key)] if kms_key else [])
    if (method == "PUT" and _only(query, "partNumber", "uploadId")) or (
        method == "POST" and ("uploads" in query or "uploadId" in query)
    ):
        checks = [Request("s3:PutObject", object_arn)]
        if "x-amz-copy-source" in request.headers:
            source = unquote(request.headers["x-amz-copy-source"]).lstrip("/").split("?")[0]
            checks.append(Request("s3:GetObject", f"arn:aws:s3:::{source}"))
        kms_key = _put_kms_key(request, bucket, resources)
        return checks + ([Request("kms:GenerateDataKey", kms_key)] if kms_key else [])
    if method == "DELETE" and _only(query):
        return [Request("s3:DeleteObject", object_arn)]
    raise Unmapped(f"s3 {method} object ?{'&'.join(sorted(query))}")


def _only(query: Mapping[str, Sequence[str]], *allowed: str) -> bool:
    return set(query) <= set(allowed)


def _put_kms_key(request: ApiRequest, bucket: str, resources: Resources) -> str | None:
    headers = request.headers
    algorithm = headers.get("x-amz-server-side-encryption")
    if algorithm is None:
        return resources.bucket_kms_key(bucket)
    if algorithm.startswith("aws:kms"):
        key_id = headers.get("x-amz-server-side-encryption-aws-kms-key-id")
        # Without a key id S3 uses the AWS managed key aws/s3, which any principal of the
        # account may use through S3.
        return resources.kms_key_arn(request.region, key_id) if key_id else None
    return None


def _deleted_keys(body: bytes) -> list[str]:
    root = ET.fromstring(body)  # noqa: S314 - a request this machine's own client signed
    return [
        element.text or ""
        for element in root.iter()
        if element.tag.rpartition("}")[2] == "Key" and element.text is not None
    ]
