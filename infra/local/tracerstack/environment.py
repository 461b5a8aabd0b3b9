"""The environment variables each service reads, built from the stacks' outputs.

One mapping serves the local stack (outputs resolved by the bootstrap) and the tests; the
names are those ``covidtracer.settings`` reads.
"""

from __future__ import annotations

import functools
import json

from tracerstack.bootstrap import Bootstrap

# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def service_environment(
    boot: Bootstrap, *, partners_url: str, database_url: str, stage: str = "local"
) -> dict[str, str]:
    out = boot.outputs
    seed_fcm_service_account(boot, partners_url)
    return {
        **LOCAL_CREDENTIALS,
        "STAGE": stage,
        "AWS_REGION": boot.region,
        "AWS_DEFAULT_REGION": boot.region,
        "SES_REGION": boot.ses_region,
        "AWS_ENDPOINT_URL": boot.endpoint_url,
        "USERS_TABLE": out["UsersTable"],
        "PERSONAL_DETAILS_TABLE": out["PersonalDetailsTable"],
        "EXPOSURE_EVENTS_TABLE": out["ExposureEventsTable"],
        "RATE_LIMITS_TABLE": out["RateLimitsTable"],
        "SIGN_IN_SESSIONS_TABLE": out["SignInSessionsTable"],
        "USER_POOL_ID": out["UserPoolId"],
        "APP_CLIENT_IDS": json.dumps(client_ids(boot)),
        "FEED_BUCKET": out["FeedBucket"],
        "ENF_EXPORTS_BUCKET": out["EnfExportsBucket"],
        "USER_DETAILS_BUCKET": out["UserDetailsBucket"],
        "USER_DETAILS_KMS_KEY_ID": out["DataKeyArn"],
        "EXPORT_SIGNING_KEY_ID": out["ExportSigningKeyId"],
        "NCTS_API_KEY_SECRET_ID": out["NctsApiKeySecretArn"],
        "ENF_TOKEN_SIGNING_SECRET_ID": out["EnfTokenSigningSecretArn"],
        "ENF_CODE_HASH_SECRET_ID": out["EnfCodeHashSecretArn"],
        "PERSONAL_DATA_UPDATES_QUEUE_URL": out["PersonalDataUpdatesQueueUrl"],
        "POST_AUTHENTICATION_QUEUE_URL": out["PostAuthenticationQueueUrl"],
        "ANALYTICS_STREAM_NAME": out["AnalyticsStreamName"],
        "EMAIL_SENDER": out["SenderAddress"],
        "NCTS_BASE_URL": partners_url,
        "FCM_BASE_URL": f"{partners_url}/fcm",
        "FCM_SERVICE_ACCOUNT_SECRET_ID": out["FcmServiceAccountSecretArn"],
        "DATABASE_URL": database_url,
        # The local stack lets phones register with platform "test" (DESIGN §5).
        "ATTESTATION_PLATFORMS": "ios,android,test",
        "LOG_LEVEL": "INFO",
    }


def client_ids(boot: Bootstrap) -> dict[str, str]:
    out = boot.outputs
    return {"ios": out["IosClientId"], "android": out["AndroidClientId"], "web": out["WebClientId"]}


FCM_PROJECT_ID = "covidtracer-local"


def seed_fcm_service_account(boot: Bootstrap, partners_url: str) -> None:
    """Store a service account whose token URI is the stand-in's, as an operator would store
    Google's JSON in the cloud, so the FCM adapter runs its real OAuth2 grant locally."""
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
