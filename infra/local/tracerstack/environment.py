"""The environment variables each service reads, built from the stacks' outputs.

One mapping serves the cloud (``deploy`` renders it into each app's stage configuration)
and the local stack and tests (outputs resolved by the bootstrap); the names are those
``covidtracer.settings`` reads.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

from tracerstack.bootstrap import Bootstrap
from tracerstack.release import release_version

# The local account administrator's key: the bootstrap, the tests' set-up and the stand-ins
# sign with it, and the IAM gate lets it do anything (tracerstack.iam.gate).
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def from_outputs(
    outputs: Mapping[str, str],
    *,
    stage: str,
    ses_region: str,
    ncts_base_url: str,
    attestation_platforms: str,
) -> dict[str, str]:
    """Settings every service can read, from the merged outputs of the stacks."""
    return {
        "STAGE": stage,
        "SES_REGION": ses_region,
        "USERS_TABLE": outputs["UsersTable"],
        "PERSONAL_DETAILS_TABLE": outputs["PersonalDetailsTable"],
        "PERSONAL_DETAILS_STREAM_ARN": outputs["PersonalDetailsStreamArn"],
        "EXPOSURE_EVENTS_TABLE": outputs["ExposureEventsTable"],
        "RATE_LIMITS_TABLE": outputs["RateLimitsTable"],
        "SIGN_IN_SESSIONS_TABLE": outputs["SignInSessionsTable"],
        "USER_POOL_ID": outputs["UserPoolId"],
        "APP_CLIENT_IDS": json.dumps(client_ids(outputs)),
        "FEED_BUCKET": outputs["FeedBucket"],
        "ENF_EXPORTS_BUCKET": outputs["EnfExportsBucket"],
        "USER_DETAILS_BUCKET": outputs["UserDetailsBucket"],
        "USER_DETAILS_KMS_KEY_ID": outputs["DataKeyArn"],
        "EXPORT_SIGNING_KEY_ID": outputs["ExportSigningKeyId"],
        "NCTS_API_KEY_SECRET_ID": outputs["NctsApiKeySecretArn"],
        "ENF_TOKEN_SIGNING_SECRET_ID": outputs["EnfTokenSigningSecretArn"],
        "ENF_CODE_HASH_SECRET_ID": outputs["EnfCodeHashSecretArn"],
        "SMS_AUTH_TOKEN_SECRET_ID": outputs["SmsAuthTokenSecretArn"],
        "FCM_BASE_URL": "https://fcm.googleapis.com",
        "FCM_SERVICE_ACCOUNT_SECRET_ID": outputs["FcmServiceAccountSecretArn"],
        "PERSONAL_DATA_UPDATES_QUEUE_URL": outputs["PersonalDataUpdatesQueueUrl"],
        "POST_AUTHENTICATION_QUEUE_URL": outputs["PostAuthenticationQueueUrl"],
        "ANALYTICS_BUCKET": outputs["AnalyticsBucket"],
        "EMAIL_SENDER": outputs["SenderAddress"],
        "NCTS_BASE_URL": ncts_base_url,
        "ATTESTATION_PLATFORMS": attestation_platforms,
        "LOG_LEVEL": "INFO",
    }


def google_contract_environment(outputs: Mapping[str, str]) -> dict[str, str]:
    """The ENF service's settings for Google's verification and key-server contracts (issue
    21): the certificate key, the revision-token wrapping key and the apps secret (API keys
    and health authorities live in the secret, never in the environment)."""
    return {
        "ENF_CERTIFICATE_SIGNING_KEY_ID": outputs["CertificateSigningKeyId"],
        "ENF_REVISION_TOKEN_KEY_ID": outputs["RevisionTokenKeyArn"],
        "ENF_APPS_SECRET_ID": outputs["EnfAppsSecretArn"],
    }


def service_environment(
    boot: Bootstrap,
    *,
    partners_url: str,
    database_url: str,
    stage: str = "local",
    service: str | None = None,
) -> dict[str, str]:
    """The local stack's and the tests' environment: moto, the stand-ins, a local database.

    With ``service``, the AWS credentials are those of that service's execution role
    (``tracerstack.iam.roles``), so moto refuses what its packaged policy does not allow;
    without, the administrator's (tests of shared code, benchmarks, set-up).
    """
    seed_fcm_service_account(boot, partners_url)
    return {
        **role_credentials(boot, service, stage),
        **from_outputs(
            boot.outputs,
            stage=stage,
            ses_region=boot.ses_region,
            ncts_base_url=partners_url,
            # The local stack lets phones register with platform "test" (DESIGN §5).
            attestation_platforms="ios,android,test",
        ),
        **google_contract_environment(boot.outputs),
        "AWS_REGION": boot.region,
        "AWS_DEFAULT_REGION": boot.region,
        "AWS_ENDPOINT_URL": boot.endpoint_url,
        "DATABASE_URL": database_url,
        "RELEASE_VERSION": release_version(),
        # moto runs no custom-auth triggers and the local API has no Cognito authorizer:
        # the local custom-auth driver signs people in, and the app verifies tokens itself.
        "COGNITO_GATEWAY": "local",
        "VERIFY_TOKENS_IN_APP": "true",
        "SIGN_IN_MIN_DURATION_MS": "50",
        # moto's KMS Sign ignores MessageType=DIGEST (it hashes the digest again).
        "ENF_EXPORT_KMS_MESSAGE_TYPE": "RAW",
        "ENF_CERTIFICATE_KMS_MESSAGE_TYPE": "RAW",
        # Deployed stages pad small export files with fake keys (the default); here a by-hand
        # upload and the tests read back exactly the keys they uploaded.
        "ENF_EXPORT_PAD_FILES": "false",
        # The partner stand-ins answer at Twilio's and Apple's paths under these prefixes.
        "SMS_BASE_URL": f"{partners_url}/sms",
        "SMS_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "APPLE_DEVICECHECK_URL": f"{partners_url}/devicecheck",
        "FCM_BASE_URL": f"{partners_url}/fcm",
        # A by-hand day shows in the report at once: the window still open is reported.
        "USAGE_REPORT_INCLUDE_OPEN_WINDOW": "true",
    }


def role_credentials(boot: Bootstrap, service: str | None, stage: str) -> dict[str, str]:
    """The credentials ``service`` signs with (the administrator's for ``None``). The details
    API's also carry the auth service's: locally its Cognito driver invokes the auth triggers,
    which in AWS run as the auth Lambdas, under the auth role (``tracerstack.local_cognito``)."""
    if service is None:
        return dict(LOCAL_CREDENTIALS)
    from tracerstack.iam import roles

    own = roles.credentials(boot, service, stage)
    if service == "details":
        own[AUTH_TRIGGER_CREDENTIALS] = json.dumps(roles.credentials(boot, "auth", stage))
    return own


# The auth role's credentials for the local Cognito driver's trigger calls (JSON).
AUTH_TRIGGER_CREDENTIALS = "COVIDTRACER_LOCAL_AUTH_TRIGGER_CREDENTIALS"


def client_ids(outputs: Mapping[str, str]) -> dict[str, str]:
    return {
        "ios": outputs["IosClientId"],
        "android": outputs["AndroidClientId"],
        "web": outputs["WebClientId"],
    }


FCM_PROJECT_ID = "covidtracer-local"


_seeded: set[tuple[str, str, str]] = set()


def seed_fcm_service_account(boot: Bootstrap, partners_url: str) -> None:
    """Store a service account whose token URI is the stand-in's, as an operator would store
    Google's JSON in the cloud, so the FCM adapter runs its real OAuth2 grant locally. Once
    per stack and stand-in: every service's environment is built from the same stack."""
    if (boot.endpoint_url, boot.stage, partners_url) in _seeded:
        return
    _seeded.add((boot.endpoint_url, boot.stage, partners_url))
    account = {
        "type": "service_account",
        "project_id": FCM_PROJECT_ID,
        "client_email": f"push@{FCM_PROJECT_ID}.iam.gserviceaccount.com",
        "private_key": _local_private_key_pem(),
        "token_uri": f"{partners_url}/oauth2/token",
    }
    boot.client("secretsmanager").put_secret_value(
        SecretId=boot.outputs["FcmServiceAccountSecretArn"], SecretString=json.dumps(account)
    )


@functools.cache
def _local_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
