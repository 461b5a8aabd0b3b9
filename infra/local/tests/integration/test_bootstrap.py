"""The bootstrap creates in moto exactly what the CloudFormation templates declare."""

from __future__ import annotations

import json

import pytest

from tracerstack import TEMPLATES, cfn
from tracerstack.bootstrap import Bootstrap


def _resources(template: str, type_: str) -> list[dict[str, object]]:
    document = cfn.load(TEMPLATES / f"{template}.yaml")
    return [r["Properties"] for r in document["Resources"].values() if r["Type"] == type_]


def test_every_table_has_its_template_keys_indexes_stream_and_ttl(aws_stack: Bootstrap) -> None:
    ddb = aws_stack.client("dynamodb")
    tables = _resources("data", "AWS::DynamoDB::Table")
    assert len(tables) == 5
    for spec in tables:
        name = spec["TableName"]["Fn::Sub"].replace("${Stage}", aws_stack.stage)  # type: ignore[index]
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == spec["KeySchema"]
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in spec.get("GlobalSecondaryIndexes", [])
        }  # type: ignore[attr-defined]
        if "StreamSpecification" in spec:
            assert table["StreamSpecification"] == {
                "StreamEnabled": True,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
        if "TimeToLiveSpecification" in spec:
            ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == "expiresAt"


def test_work_queues_redrive_to_their_dead_letter_queue_after_five_receives(
    aws_stack: Bootstrap,
) -> None:
    sqs = aws_stack.client("sqs")
    for queue in ("PersonalDataUpdates", "PostAuthentication"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=aws_stack.outputs[f"{queue}QueueUrl"], AttributeNames=["All"]
        )["Attributes"]
        dlq_arn = sqs.get_queue_attributes(
            QueueUrl=aws_stack.outputs[f"{queue}DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": 5,
        }


def test_the_export_signing_key_is_an_ecc_p256_signing_key(aws_stack: Bootstrap) -> None:
    metadata = aws_stack.client("kms").describe_key(KeyId=aws_stack.outputs["ExportSigningKeyId"])[
        "KeyMetadata"
    ]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert "ECDSA_SHA_256" in metadata["SigningAlgorithms"]


@pytest.mark.parametrize("bucket", ["FeedBucket", "EnfExportsBucket", "UserDetailsBucket"])
def test_buckets_are_versioned_and_encrypted(aws_stack: Bootstrap, bucket: str) -> None:
    s3 = aws_stack.client("s3")
    name = aws_stack.outputs[bucket]
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")


def test_the_user_pool_has_three_custom_auth_app_clients(aws_stack: Bootstrap) -> None:
    cognito = aws_stack.client("cognito-idp")
    pool_id = aws_stack.outputs["UserPoolId"]
    for platform in ("Ios", "Android", "Web"):
        client = cognito.describe_user_pool_client(
            UserPoolId=pool_id, ClientId=aws_stack.outputs[f"{platform}ClientId"]
        )["UserPoolClient"]
        assert client["ClientName"] == platform.lower()
        assert "ALLOW_CUSTOM_AUTH" in client["ExplicitAuthFlows"]


def test_the_sender_is_verified_in_the_ses_region_only(aws_stack: Bootstrap) -> None:
    sender = aws_stack.outputs["SenderAddress"]
    in_ses_region = aws_stack.client("ses", aws_stack.ses_region).list_identities()["Identities"]
    in_main_region = aws_stack.client("ses").list_identities()["Identities"]
    assert sender in in_ses_region
    assert sender not in in_main_region


def test_secrets_are_generated_and_the_analytics_stream_exists(aws_stack: Bootstrap) -> None:
    secret = aws_stack.client("secretsmanager").get_secret_value(
        SecretId=aws_stack.outputs["NctsApiKeySecretArn"]
    )["SecretString"]
    assert len(secret) == 48 and secret.isalnum()
    stream = aws_stack.client("firehose").describe_delivery_stream(
        DeliveryStreamName=aws_stack.outputs["AnalyticsStreamName"]
    )
    assert stream["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_two_stages_do_not_share_resources(
    aws_stack: Bootstrap, fresh_aws_stack: Bootstrap
) -> None:
    assert aws_stack.outputs["UsersTable"] != fresh_aws_stack.outputs["UsersTable"]
    assert aws_stack.outputs["UserPoolId"] != fresh_aws_stack.outputs["UserPoolId"]


def test_a_retired_stage_gives_back_its_delivery_streams_and_only_its_own(
    moto_endpoint: str, aws_stack: Bootstrap
) -> None:
    """Firehose's 50 streams per Region hold on the test session's one moto server: a stage
    that kept its two would stop the 26th module's bootstrap."""
    from tracerstack.bootstrap import bootstrap, retire

    firehose = aws_stack.client("firehose")
    other = bootstrap(moto_endpoint, "retiring")
    theirs = {f"covidtracer-retiring-{name}" for name in ("analytics", "service-events")}
    assert theirs <= set(firehose.list_delivery_streams()["DeliveryStreamNames"])

    retire(other)

    left = set(firehose.list_delivery_streams()["DeliveryStreamNames"])
    assert not theirs & left
    assert f"covidtracer-{aws_stack.stage}-analytics" in left
