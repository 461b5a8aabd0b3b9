"""boto3 clients built from settings talk to the configured endpoint and regions."""

from __future__ import annotations

from covidtracer import aws


def test_clients_use_the_endpoint_and_the_main_region(service_env: dict[str, str]) -> None:
    client = aws.dynamodb()
    assert client.meta.region_name == service_env["AWS_REGION"]
    assert client.meta.endpoint_url == service_env["AWS_ENDPOINT_URL"]
    # Paginated: the session's moto holds every test module's tables (over 100 of them).
    pages = client.get_paginator("list_tables").paginate()
    assert service_env["USERS_TABLE"] in [name for page in pages for name in page["TableNames"]]
    assert aws.dynamodb() is client  # one client per execution environment


def test_ses_has_its_own_region(service_env: dict[str, str]) -> None:
    assert aws.ses().meta.region_name == "us-west-2" != aws.s3().meta.region_name
    assert service_env["EMAIL_SENDER"] in aws.ses().list_identities()["Identities"]


def test_secrets_are_read_once_and_cached(service_env: dict[str, str]) -> None:
    secret_id = service_env["NCTS_API_KEY_SECRET_ID"]
    first = aws.secret_string(secret_id)
    aws.secrets().put_secret_value(SecretId=secret_id, SecretString="rotated")
    assert aws.secret_string(secret_id) == first
    aws.reset()
    assert aws.secret_string(secret_id) == "rotated"
