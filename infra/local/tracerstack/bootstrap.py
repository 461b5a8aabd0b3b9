"""Creates the stack's AWS resources in moto from the same CloudFormation templates the cloud uses.

moto's own CloudFormation skips several resource types and properties (stream settings,
TTL, KMS key specs, Cognito clients), so the bootstrap reads each template and calls the
service APIs itself. Table keys, indexes, streams, queue redrives and key specs therefore
have one source of truth: ``infra/templates``. Types with no local meaning (IAM roles) are
skipped by name; any other unknown type is an error.

Every physical name carries the ``Stage`` parameter, so tests get an isolated set of
resources by bootstrapping with a unique stage.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tracerstack import TEMPLATES, cfn

ACCOUNT_ID = "123456789012"  # moto's default account
TEMPLATE_ORDER = ("data", "messaging", "identity", "email", "analytics")
# No local meaning: IAM is not enforced by moto; Cognito invokes no Lambdas locally (the local
# custom-auth driver runs the trigger handlers); app analytics are not part of the stack; the
# local scheduler (``tracerstack.scheduler``, ``make job``) runs the jobs EventBridge would;
# bucket policies grant other accounts (one account here) and refuse plain HTTP, which is how
# the stack talks to moto (moto enforces a bucket policy's Deny).
SKIPPED_TYPES = frozenset(
    {
        "AWS::S3::BucketPolicy",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::Lambda::Permission",
        "AWS::Cognito::IdentityPool",
        "AWS::Cognito::IdentityPoolRoleAttachment",
        "AWS::Scheduler::Schedule",
    }
)


@dataclass
class Created:
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Bootstrap:
    """The result: every template's resolved outputs, by output name."""

    stage: str
    region: str
    ses_region: str
    endpoint_url: str
    outputs: dict[str, str]

    def client(self, service: str, region: str | None = None) -> Any:
        return admin_client(self.endpoint_url, service, region or self.region)


@functools.cache
def admin_client(endpoint_url: str, service: str, region: str) -> Any:
    """A client signing as the local account's administrator (the IAM gate lets it do
    anything): for the bootstrap, and for tests' set-up and checks, never for service code."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto
    ).client(service, region_name=region, endpoint_url=endpoint_url)


def bootstrap(
    endpoint_url: str,
    stage: str,
    region: str = "ap-southeast-2",
    ses_region: str = "us-west-2",
    templates: Path = TEMPLATES,
) -> Bootstrap:
    outputs: dict[str, str] = {}
    exports: dict[str, str] = {}
    for name in TEMPLATE_ORDER:
        # The email stack is deployed in the SES region, as in the cloud.
        template_region = ses_region if name == "email" else region
        template = cfn.load(templates / f"{name}.yaml")
        created = _create_template(template, name, stage, endpoint_url, template_region, exports)
        outputs.update(created)
    return Bootstrap(stage, region, ses_region, endpoint_url, outputs)


def retire(boot: Bootstrap) -> None:
    """Deletes what a test stage holds against a quota. Firehose allows 50 delivery streams
    per account and Region (https://docs.aws.amazon.com/firehose/latest/dev/limits.html) and
    moto enforces it; every stage creates two, so a test session that made a stage per test
    module and kept them all would stop at its 26th. Everything else a stage creates is free
    and goes with the moto server."""
    firehose = boot.client("firehose")
    prefix = f"covidtracer-{boot.stage}-"
    for name in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]:
        if name.startswith(prefix):
            firehose.delete_delivery_stream(DeliveryStreamName=name)


def _create_template(
    template: dict[str, Any],
    name: str,
    stage: str,
    endpoint_url: str,
    region: str,
    exports: dict[str, str],
) -> dict[str, str]:
    parameters = {
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::StackName": f"covidtracer-{stage}-{name}",
        "AWS::URLSuffix": "amazonaws.com",
    }
    for parameter, spec in template.get("Parameters", {}).items():
        parameters[parameter] = stage if parameter == "Stage" else str(spec.get("Default", ""))
    refs: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    resolver = cfn.Resolver(parameters, refs, attributes, exports, template.get("Conditions"))

    pending = dict(template["Resources"])
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                del pending[logical_id]
                progressed = True
                continue
            if resource["Type"] in SKIPPED_TYPES:
                refs[logical_id] = f"arn:aws:iam::{ACCOUNT_ID}:role/{logical_id}"
                attributes[logical_id] = {"Arn": refs[logical_id]}
                del pending[logical_id]
                progressed = True
                continue
            try:
                properties = resolver(resource.get("Properties", {}))
            except cfn.TemplateError:
                continue  # depends on a resource not created yet
            creator = _CREATORS.get(resource["Type"])
            if creator is None:
                raise cfn.TemplateError(f"{name}.yaml: {resource['Type']} is not supported locally")
            created = creator(_client_factory(endpoint_url, region), properties)
            refs[logical_id] = created.ref
            attributes[logical_id] = created.attributes
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise cfn.TemplateError(f"{name}.yaml: cannot resolve {sorted(pending)}")

    outputs: dict[str, str] = {}
    for output_name, output in template.get("Outputs", {}).items():
        value = str(resolver(output["Value"]))
        outputs[output_name] = value
        if "Export" in output:
            exports[str(resolver(output["Export"]["Name"]))] = value
    return outputs


ClientFactory = Callable[[str], Any]


def _client_factory(endpoint_url: str, region: str) -> ClientFactory:
    return lambda service: admin_client(endpoint_url, service, region)


def _dynamodb_table(clients: ClientFactory, p: dict[str, Any]) -> Created:
    ddb = clients("dynamodb")
    args: dict[str, Any] = {
        "TableName": p["TableName"],
        "KeySchema": p["KeySchema"],
        "AttributeDefinitions": p["AttributeDefinitions"],
        "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in p:
        args["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
    if "StreamSpecification" in p:
        args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
    table = ddb.create_table(**args)["TableDescription"]
    if "TimeToLiveSpecification" in p:
        ddb.update_time_to_live(
            TableName=p["TableName"], TimeToLiveSpecification=p["TimeToLiveSpecification"]
        )
    attributes = {"Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return Created(p["TableName"], attributes)


def _sqs_queue(clients: ClientFactory, p: dict[str, Any]) -> Created:
    sqs = clients("sqs")
    queue_attributes = {
        key: _queue_attribute(value) for key, value in p.items() if key not in ("QueueName", "Tags")
    }
    url = sqs.create_queue(QueueName=p["QueueName"], Attributes=queue_attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Created(url, {"Arn": arn, "QueueName": p["QueueName"], "QueueUrl": url})


def _queue_attribute(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)  # RedrivePolicy is a JSON document in the SQS API
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _s3_bucket(clients: ClientFactory, p: dict[str, Any]) -> Created:
    s3 = clients("s3")
    name = p["BucketName"]
    region = s3.meta.region_name
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if p.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=p["VersioningConfiguration"])
    if p.get("BucketEncryption"):
        # CloudFormation says ServerSideEncryptionByDefault where the API says Apply….
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **(
                    {"BucketKeyEnabled": rule["BucketKeyEnabled"]}
                    if "BucketKeyEnabled" in rule
                    else {}
                ),
            }
            for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    return Created(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
        },
    )


def _kms_key(clients: ClientFactory, p: dict[str, Any]) -> Created:
    kms = clients("kms")
    metadata = kms.create_key(
        Description=p.get("Description", ""),
        KeySpec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
        Policy=json.dumps(p["KeyPolicy"]),
    )["KeyMetadata"]
    return Created(metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})


def _kms_alias(clients: ClientFactory, p: dict[str, Any]) -> Created:
    clients("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    return Created(p["AliasName"])


def _secret(clients: ClientFactory, p: dict[str, Any]) -> Created:
    if "SecretString" in p:
        value = p["SecretString"]
    else:
        generate = p.get("GenerateSecretString", {})
        alphabet = string.ascii_letters + string.digits
        if not generate.get("ExcludePunctuation"):
            alphabet += "!#$%&*+-.:;<=>?@^_~"
        value = "".join(secrets.choice(alphabet) for _ in range(generate.get("PasswordLength", 32)))
        if "GenerateStringKey" in generate:
            # A JSON secret: the template with the generated string under that key.
            document = json.loads(generate.get("SecretStringTemplate", "{}"))
            value = json.dumps({**document, generate["GenerateStringKey"]: value})
    arn = clients("secretsmanager").create_secret(
        Name=p["Name"], Description=p.get("Description", ""), SecretString=value
    )["ARN"]
    return Created(arn, {"Id": arn})


def _api_arguments(p: dict[str, Any], *left_out: str) -> dict[str, Any]:
    """The resource's properties but ``left_out``: CloudFormation names them as the API does."""
    return {key: value for key, value in p.items() if key not in left_out}


def _user_pool(clients: ClientFactory, p: dict[str, Any]) -> Created:
    # LambdaConfig: the local stack runs the Cognito triggers itself (local_cognito).
    args = _api_arguments(p, "UserPoolName", "LambdaConfig")
    pool = clients("cognito-idp").create_user_pool(PoolName=p["UserPoolName"], **args)["UserPool"]
    region = clients("cognito-idp").meta.region_name
    return Created(
        pool["Id"],
        {
            "Arn": pool["Arn"],
            "ProviderName": f"cognito-idp.{region}.amazonaws.com/{pool['Id']}",
            "ProviderURL": f"https://cognito-idp.{region}.amazonaws.com/{pool['Id']}",
        },
    )


def _user_pool_client(clients: ClientFactory, p: dict[str, Any]) -> Created:
    args = _api_arguments(p, "UserPoolId", "ClientName")
    for number in (
        "AuthSessionValidity",
        "AccessTokenValidity",
        "IdTokenValidity",
        "RefreshTokenValidity",
    ):
        if number in args:
            args[number] = int(args[number])  # template parameters resolve to strings
    created = clients("cognito-idp").create_user_pool_client(
        UserPoolId=p["UserPoolId"], ClientName=p["ClientName"], **args
    )["UserPoolClient"]
    return Created(created["ClientId"], {"Name": p["ClientName"]})


def _ses_identity(clients: ClientFactory, p: dict[str, Any]) -> Created:
    clients("ses").verify_email_identity(EmailAddress=p["EmailIdentity"])
    return Created(p["EmailIdentity"])


def _ses_configuration_set(clients: ClientFactory, p: dict[str, Any]) -> Created:
    clients("ses").create_configuration_set(ConfigurationSet={"Name": p["Name"]})
    return Created(p["Name"])


# Firehose's prefix expressions (``!{timestamp:yyyy}`` …), which moto copies literally.
_PREFIX_EXPRESSION = re.compile(r"!\{[^}]*\}/?")


def _firehose(clients: ClientFactory, p: dict[str, Any]) -> Created:
    """moto's Firehose delivers each PutRecordBatch at once, as one S3 object at
    ``<Prefix>YYYY/MM/DD/HH/<stream>-…`` (UTC) and uncompressed, and does not evaluate
    Firehose's prefix expressions. The templates' prefix is ``events/`` plus the UTC date
    (``!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/``), which is what moto appends
    anyway: so the expressions are dropped here and objects land under the same
    ``events/YYYY/MM/DD/`` as in the cloud (with one more folder for the hour)."""
    destination = dict(p["ExtendedS3DestinationConfiguration"])
    for key in ("Prefix", "ErrorOutputPrefix"):
        if key in destination:
            destination[key] = _PREFIX_EXPRESSION.sub("", destination[key])
    created = clients("firehose").create_delivery_stream(
        DeliveryStreamName=p["DeliveryStreamName"],
        DeliveryStreamType=p.get("DeliveryStreamType", "DirectPut"),
        ExtendedS3DestinationConfiguration={
            key: destination[key]
            for key in (
                "BucketARN",
                "RoleARN",
                "Prefix",
                "ErrorOutputPrefix",
                "BufferingHints",
                "CompressionFormat",
            )
            if key in destination
        },
    )
    return Created(p["DeliveryStreamName"], {"Arn": created["DeliveryStreamARN"]})


_CREATORS: dict[str, Callable[[ClientFactory, dict[str, Any]], Created]] = {
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
    "AWS::SES::EmailIdentity": _ses_identity,
    "AWS::SES::ConfigurationSet": _ses_configuration_set,
    "AWS::KinesisFirehose::DeliveryStream": _firehose,
}
