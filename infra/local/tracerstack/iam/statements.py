"""What each service's execution role may do: the statements ``make package`` writes into
``build/<service>/template.json`` and the local stack enforces (``tracerstack.iam.roles``).

Every statement names the resources of the stack outputs it is given (``${...}`` references
for ``Fn::Sub``); ``Resource: "*"`` appears only where AWS documents that an action takes no
resource, and then with the condition keys AWS offers. The AWS documentation for each rule is
cited beside it. Every AWS call a service's code makes is authorized under these statements
in its tests; an action added here that no code needs is caught by nothing but review, so
keep each one tied to the code that calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARTITION = "${AWS::Partition}"
REGION_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"

# The item actions of the tables a service reads and writes (pynamodb describes a table
# before its first write; TransactWriteItems checks ConditionCheckItem on the checked table).
ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
]
# Which tables each service's code reaches (its wiring modules): details all five, auth the
# post-authentication consumer's Users table, export the records it exports.
SERVICE_TABLES = {
    "auth": ("UsersTable",),
    "details": (
        "UsersTable",
        "PersonalDetailsTable",
        "ExposureEventsTable",
        "RateLimitsTable",
        "SignInSessionsTable",
    ),
    "export": ("PersonalDetailsTable",),
}


def allow(
    actions: list[str], resource: Any, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One IAM statement allowing ``actions`` on ``resource`` (under ``condition``)."""
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    return statement | ({"Condition": condition} if condition else {})


def service_policy(service: str, outputs: Mapping[str, str]) -> dict[str, Any]:
    """Least-privilege IAM policy for one service's Lambdas (``${...}`` for Fn::Sub)."""
    statements = [
        # The services' analytics events are lines of their logs (issue 22): CloudWatch Logs,
        # not the functions, puts them into Firehose, under the analytics stack's role.
        *_logs(service),
        *_tables(service, outputs),
        *_SERVICES[service](outputs),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def table_arn(outputs: Mapping[str, str], name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION_ACCOUNT}:table/{outputs[name]}"


def bucket_arn(outputs: Mapping[str, str], name: str) -> str:
    return f"arn:{PARTITION}:s3:::{outputs[name]}"


def _logs(service: str) -> list[dict[str, Any]]:
    """The function's own log groups, ``/aws/lambda/<function name>`` (Lambda's default),
    instead of ``logs:*`` on everything: CreateLogStream and PutLogEvents on its streams
    (``<group ARN>:*``), as the Lambda Operator Guide's policy
    (https://docs.aws.amazon.com/lambda/latest/operatorguide/access-logs.html; the actions:
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html)."""
    groups = [
        f"arn:{PARTITION}:logs:{REGION_ACCOUNT}:log-group:/aws/lambda/covidtracer-{service}-${{Stage}}",
        f"arn:{PARTITION}:logs:{REGION_ACCOUNT}:log-group:/aws/lambda/covidtracer-{service}-${{Stage}}-*",
    ]
    # The group itself is a resource of the service's stack (``<Function>LogGroup``), so the
    # role need not create it (logs:CreateLogGroup).
    return [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group}:*" for group in groups]),
    ]


def _tables(service: str, outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    tables = [table_arn(outputs, name) for name in SERVICE_TABLES.get(service, ())]
    if not tables:
        return []
    if service == "export":
        # The export reads each changed user's current record, a batch at a time.
        return [allow(["dynamodb:BatchGetItem", "dynamodb:GetItem"], tables)]
    statements = [allow(ITEM_ACTIONS, tables + [f"{arn}/index/*" for arn in tables])]
    if service == "details":
        # The feed is rebuilt from a full scan when no readable feed exists (exposures.service).
        statements.append(allow(["dynamodb:Scan"], table_arn(outputs, "ExposureEventsTable")))
    return statements


def _auth(outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        # The code email, only from the sender address (ses:FromAddress), only through this
        # account's identities in the SES region; the identity's default configuration set
        # is named too (https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html).
        allow(
            ["ses:SendEmail"],
            [
                f"arn:{PARTITION}:ses:${{SesRegion}}:${{AWS::AccountId}}:identity/*",
                f"arn:{PARTITION}:ses:${{SesRegion}}:${{AWS::AccountId}}:configuration-set/covidtracer-${{Stage}}",
            ],
            {"StringEquals": {"ses:FromAddress": outputs["SenderAddress"]}},
        ),
        # PostAuthentication publishes; the queue's event source mapping polls and deletes
        # with the function's role (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html).
        allow(
            [
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            outputs["PostAuthenticationQueueArn"],
        ),
    ]


def _details(outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    feed = bucket_arn(outputs, "FeedBucket")
    return [
        allow(
            [
                "cognito-idp:AdminGetUser",
                "cognito-idp:AdminCreateUser",
                # A new account's password is set at once, so it is never left in
                # FORCE_CHANGE_PASSWORD (signin.cognito).
                "cognito-idp:AdminSetUserPassword",
                "cognito-idp:AdminInitiateAuth",
                "cognito-idp:AdminRespondToAuthChallenge",
                # A contact record's email, for accounts with no Users row (contactdetails).
                "cognito-idp:ListUsers",
            ],
            outputs["UserPoolArn"],
        ),
        allow(["s3:PutObject", "s3:GetObject"], f"{feed}/*"),
        # HeadBucket (GET /health) is s3:ListBucket
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html), and without
        # it S3 answers a missing feed with 403 rather than 404, so the first feed could never
        # be created (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
        allow(["s3:ListBucket"], feed),
        allow(
            ["secretsmanager:GetSecretValue"],
            [outputs["NctsApiKeySecretArn"], outputs["FcmServiceAccountSecretArn"]],
        ),
    ]


def _export(outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    reports = f"{outputs['AnalyticsBucketArn']}/reports/usage/*"
    return [
        # The daily usage report reads the day's events and writes its CSVs.
        allow(["s3:ListBucket"], outputs["AnalyticsBucketArn"]),
        allow(["s3:GetObject"], [f"{outputs['AnalyticsBucketArn']}/events/*", reports]),
        allow(["s3:PutObject"], reports),
        # The PersonalDetails stream's event source mapping reads with the function's role
        # (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-dynamodb-permissions).
        allow(
            [
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:DescribeStream",
                "dynamodb:ListStreams",
            ],
            outputs["PersonalDetailsStreamArn"],
        ),
        allow(
            [
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            outputs["PersonalDataUpdatesQueueArn"],
        ),
        # Lambda sends a PersonalDetails stream batch it gave up on to the mapping's on-failure
        # destination with the function's role
        # (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
        allow(["sqs:SendMessage"], outputs["PersonalDetailsStreamFailuresQueueArn"]),
        allow(["s3:PutObject", "s3:GetObject"], f"{bucket_arn(outputs, 'UserDetailsBucket')}/*"),
        # The files are SSE-KMS under the data key: writing needs GenerateDataKey, reading
        # the export state back Decrypt (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
        allow(["kms:GenerateDataKey", "kms:Decrypt"], outputs["DataKeyArn"]),
    ]


def _enf(outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    exports = bucket_arn(outputs, "EnfExportsBucket")
    return [
        # Lambda creates the function's network interfaces with its role
        # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html, the actions of
        # AWSLambdaVPCAccessExecutionRole): the Describe actions work only on "*", the rest
        # is held to this account and region.
        allow(["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], "*"),
        allow(
            [
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            f"arn:{PARTITION}:ec2:{REGION_ACCOUNT}:*/*",
        ),
        allow(
            ["secretsmanager:GetSecretValue"],
            [
                outputs["DatabaseSecretArn"],
                outputs["NctsApiKeySecretArn"],
                outputs["EnfTokenSigningSecretArn"],
                outputs["EnfCodeHashSecretArn"],
                # iOS registration signs Apple's DeviceCheck JWT with this key (attestation).
                outputs["AppleDeviceCheckKeySecretArn"],
                # A stage that texts through a Twilio-style provider (SMS_PROVIDER=twilio).
                outputs["SmsAuthTokenSecretArn"],
            ],
        ),
        allow(["kms:Decrypt"], outputs["DatabaseKeyArn"]),
        allow(
            ["kms:Sign", "kms:GetPublicKey"],
            f"arn:{PARTITION}:kms:{REGION_ACCOUNT}:key/{outputs['ExportSigningKeyId']}",
        ),
        allow(
            ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"],
            [exports, f"{exports}/*"],
        ),
        # Upload codes by End User Messaging SMS: its origination identities, opt-out lists
        # and configuration sets of this account and region
        # (https://docs.aws.amazon.com/sms-voice/latest/userguide/security_iam_service-with-iam.html).
        allow(["sms-voice:SendTextMessage"], f"arn:{PARTITION}:sms-voice:{REGION_ACCOUNT}:*"),
        # The operator-changeable client documents (exposure and notification
        # settings); a missing parameter means "serve the shipped default".
        allow(
            ["ssm:GetParameter"],
            f"arn:{PARTITION}:ssm:{REGION_ACCOUNT}:parameter/covidtracer/${{Stage}}/enf/*",
        ),
        # PutMetricData takes no resource; the namespace condition is what can narrow it
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
        allow(
            ["cloudwatch:PutMetricData"],
            "*",
            {"StringEquals": {"cloudwatch:namespace": "CovidTracer"}},
        ),
        *_google_contract(outputs),
    ]


_SERVICES = {"auth": _auth, "details": _details, "export": _export, "enf": _enf}


def _google_contract(outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ENF role's grants for Google's contracts (issue 21): sign certificates with their
    KMS key (and read its public half, the key server's own health-authority key), wrap and
    unwrap the revision tokens' data keys, read the apps secret."""
    return [
        allow(
            ["kms:Sign", "kms:GetPublicKey"],
            f"arn:{PARTITION}:kms:{REGION_ACCOUNT}:key/{outputs['CertificateSigningKeyId']}",
        ),
        allow(["kms:Encrypt", "kms:Decrypt"], outputs["RevisionTokenKeyArn"]),
        allow(["secretsmanager:GetSecretValue"], outputs["EnfAppsSecretArn"]),
    ]
