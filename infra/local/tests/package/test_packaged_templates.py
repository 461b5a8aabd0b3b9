"""What `make package` builds, read as CloudFormation and SAM would read it.

Runs after `make package` (the Makefile's `test-packages`), over `build/<service>/`: the
templates that are really deployed, not our intentions about them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from covidtracer.contactdetails.settings import DetailsSettings
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.nctsexport.settings import ExportSettings
from covidtracer.signin.settings import AuthSettings
from tracerstack import SERVICES, TEMPLATES, cfn, deploy, vendor
from tracerstack.package import BUILD, SERVICE_NAMES, role_policy
from tracerstack.release import release_version

SETTINGS = {
    "auth": AuthSettings,
    "details": DetailsSettings,
    "export": ExportSettings,
    "enf": EnfSettings,
}


def _template(service: str) -> dict[str, Any]:
    return deploy.load_package(service).template


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _fake_outputs() -> dict[str, str]:
    outputs = {}
    for path in TEMPLATES.glob("*.yaml"):
        for name in cfn.load(path).get("Outputs", {}):
            outputs[name] = f"{name.lower()}-value"
    outputs.update(
        {
            "PersonalDataUpdatesQueueUrl": "https://sqs.ap-southeast-2.amazonaws.com/1/updates",
            "PostAuthenticationQueueUrl": "https://sqs.ap-southeast-2.amazonaws.com/1/post-auth",
            "SenderAddress": "no-reply@tracing.example.nz",
            "PrivateSubnetIds": "subnet-a,subnet-b",
            "PersonalDetailsStreamArn": "arn:aws:dynamodb:ap-southeast-2:1:table/pd/stream/2021",
            "PersonalDetailsStreamFailuresQueueArn": "arn:aws:sqs:ap-southeast-2:1:stream-failures",
        }
    )
    return outputs


def _context(stage: str) -> deploy.Context:
    ctx = deploy.Context(stage=deploy.StageConfig.load(stage), dry_run=True, log=lambda _: None)
    ctx.outputs.update(_fake_outputs())
    return ctx


def _substitute(value: Any, parameters: dict[str, str]) -> str:
    """An environment value as the function sees it once CloudFormation resolves Fn::Sub."""
    if isinstance(value, str):
        return value
    text: str = value["Fn::Sub"]
    return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: parameters[m.group(1)], text)


def _resolve_refs(value: Any, parameters: dict[str, str]) -> Any:
    """Resolve ``Ref``s to parameters, as CloudFormation does after the transform."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        return {k: _resolve_refs(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, parameters) for v in value]
    return value


@functools.cache
def _transformed(service: str, stage: str = "prod") -> dict[str, Any]:
    """The template after CloudFormation's SAM transform, as it would be deployed."""
    import boto3
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator

    template = _template(service)
    for function in _functions(template).values():
        function["CodeUri"] = {"Bucket": "artifacts", "Key": f"{service}/digest.zip"}
    parameters = deploy.service_parameters(service, template, _context(stage))
    session = boto3.Session(
        region_name="ap-southeast-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    translated = Translator(None, parser.Parser(), boto_session=session).translate(
        sam_template=template, parameter_values=parameters
    )
    resolved: dict[str, Any] = _resolve_refs(translated, parameters)
    return resolved


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_function_runs_python_3_13_tagged_with_this_release_behind_the_stage_alias(
    service: str,
) -> None:
    package = deploy.load_package(service)
    assert package.version == release_version()
    functions = _functions(package.template)
    assert functions
    for props in functions.values():
        assert props["Runtime"] == "python3.13"
        assert props["Tags"]["covidtracer:version"] == release_version()
        assert props["Environment"]["Variables"]["RELEASE_VERSION"] == release_version()
        assert props["AutoPublishAlias"] == {"Ref": "Stage"}
        assert props["FunctionName"]["Fn::Sub"].startswith(f"covidtracer-{service}-${{Stage}}")


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_template_names_no_stage_account_or_resource_of_its_own(service: str) -> None:
    text = json.dumps(_template(service))
    for stage in deploy.STAGES:
        assert f"covidtracer-{stage}-" not in text
    assert not re.search(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d{12}:", text)
    assert "deployment.zip" in text  # the code is attached at deploy time, by content hash


def test_cognito_invokes_the_auth_functions_identity_yaml_names_through_their_alias() -> None:
    identity = (TEMPLATES / "identity.yaml").read_text()
    wired = set(re.findall(r"function:covidtracer-auth-\$\{Stage\}-(\w+):\$\{Stage\}", identity))
    names = {
        props["FunctionName"]["Fn::Sub"].removeprefix("covidtracer-auth-${Stage}-")
        for props in _functions(_template("auth")).values()
    }
    assert len(wired) == 5
    assert wired <= names
    resources = _transformed("auth")["Resources"]
    permissions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["Principal"] == "cognito-idp.amazonaws.com"
    ]
    assert len(permissions) == 5
    assert all(p["FunctionName"]["Ref"].endswith("Aliasprod") for p in permissions)
    assert all(p["SourceArn"] == "userpoolarn-value" for p in permissions)


def _event_source_mappings(service: str) -> list[dict[str, Any]]:
    resources = _transformed(service)["Resources"].values()
    return [r["Properties"] for r in resources if r["Type"] == "AWS::Lambda::EventSourceMapping"]


def test_the_post_authentication_queue_feeds_its_consumer_with_partial_batch_failures() -> None:
    mappings = _event_source_mappings("auth")
    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == "postauthenticationqueuearn-value"
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["FunctionName"]["Ref"] == "PostAuthenticationConsumerAliasprod"


def test_the_personal_details_stream_feeds_the_export_service() -> None:
    mappings = _event_source_mappings("export")
    assert [m["EventSourceArn"] for m in mappings] == [_fake_outputs()["PersonalDetailsStreamArn"]]


@pytest.mark.parametrize("service", ["details", "enf"])
def test_each_api_is_behind_the_regional_waf_and_answers_gateway_errors_in_the_error_shape(
    service: str,
) -> None:
    resources = _transformed(service)["Resources"]
    association = next(
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"
    )
    assert association["WebACLArn"] == "apiwebaclarn-value"
    assert "${RestAPIapiStage}" in association["ResourceArn"]["Fn::Sub"]
    body = resources["RestAPI"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    unknown_route = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown_route["statusCode"] == "404"
    assert json.loads(unknown_route["responseTemplates"]["application/json"]) == {
        "type": "urn:errors:not-found",
        "title": "The resource was not found.",
        "status": 404,
    }
    for kind in ("UNAUTHORIZED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"):
        problem = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert problem["type"].startswith("urn:errors:")
        assert problem["status"] == int(responses[kind]["statusCode"])
        headers = responses[kind]["responseParameters"]
        assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"
    integration_uris = {
        op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in body["paths"].values()
        for op in path.values()
    }
    assert integration_uris == {
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "${APIHandlerAliasprod}/invocations"
    }


def test_the_enf_api_returns_export_zips_as_bytes_to_accept_any() -> None:
    body = _transformed("enf")["Resources"]["RestAPI"]["Properties"]["Body"]
    assert "*/*" in body["x-amazon-apigateway-binary-media-types"]


def test_the_enf_functions_run_in_the_private_subnets() -> None:
    resources = _transformed("enf")["Resources"]
    functions = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"
    ]
    assert functions
    for function in functions:
        assert function["VpcConfig"]["SubnetIds"] == {"Fn::Split": [",", "subnet-a,subnet-b"]}
        assert function["VpcConfig"]["SecurityGroupIds"] == ["lambdasecuritygroupid-value"]


@pytest.mark.parametrize("service", SERVICE_NAMES)
@pytest.mark.parametrize("stage", deploy.STAGES)
def test_the_deployed_environment_passes_each_services_settings_validation(
    service: str, stage: str
) -> None:
    template = _template(service)
    parameters = deploy.service_parameters(service, template, _context(stage))
    assert set(parameters) == set(template["Parameters"])
    function = next(iter(_functions(template).values()))
    env = {k: _substitute(v, parameters) for k, v in function["Environment"]["Variables"].items()}
    settings = SETTINGS[service].from_env({"AWS_REGION": "ap-southeast-2", **env})
    assert settings.stage == stage
    assert "AWS_ENDPOINT_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    if service == "enf" and stage == "prod":
        assert "test" not in env["ATTESTATION_PLATFORMS"].split(",")


def test_each_role_grants_only_its_services_resources() -> None:
    def policy(service: str) -> str:
        role = _template(service)["Resources"]["DefaultRole"]["Properties"]
        return json.dumps(role["Policies"])

    enf, details = policy("enf"), policy("details")
    assert "kms:Sign" in enf and "kms:Sign" not in details
    assert "${DatabaseSecretArn}" in enf and "${DatabaseSecretArn}" not in details
    assert "dynamodb:PutItem" in details and "dynamodb:PutItem" not in enf
    # The client documents an operator changes without a redeploy (Parameter Store).
    assert "parameter/covidtracer/${Stage}/enf/*" in enf and "ssm:" not in details


def _role_policy(template: dict[str, Any]) -> dict[str, Any]:
    [policy] = template["Resources"]["DefaultRole"]["Properties"]["Policies"]
    document: dict[str, Any] = policy["PolicyDocument"]
    return document


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_role_holds_exactly_the_statements_the_local_stack_and_the_tests_enforce(
    service: str,
) -> None:
    # tracerstack.iam.roles builds each local role from this same function, so what the
    # tests run under is what deploys.
    assert _role_policy(_template(service)) == role_policy(service)[0]


# The only statements on every resource, each with the AWS documentation that leaves no other
# choice (tracerstack.iam.statements): actions that take no resource type.
UNSCOPABLE = {
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html
    ("cloudwatch:PutMetricData",): {"StringEquals": {"cloudwatch:namespace": "CovidTracer"}},
    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
    ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"): None,
}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_statement_grants_a_whole_service_or_every_resource_unless_aws_requires_it(
    service: str,
) -> None:
    for statement in _role_policy(_template(service))["Statement"]:
        actions = tuple(statement["Action"])
        assert not any(action.endswith(":*") or action == "*" for action in actions), statement
        resources = statement["Resource"]
        if resources == "*":
            assert actions in UNSCOPABLE, statement
            assert statement.get("Condition") == UNSCOPABLE[actions], statement


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_role_policy_fits_iams_inline_policy_size(service: str) -> None:
    # A role's inline policies total at most 10,240 characters, whitespace not counted
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html). The
    # references are about as long as the ARNs CloudFormation puts in their place; the
    # margin covers the longer ones (secret ARNs, stage names).
    document = json.dumps(_role_policy(_template(service)), separators=(",", ":"))
    assert len(document) <= 8_000, len(document)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_package_holds_no_deployment_state_and_no_boto3(service: str) -> None:
    with zipfile.ZipFile(BUILD / service / "deployment.zip") as archive:
        names = archive.namelist()
    assert "app.py" in names
    assert not any(n.startswith((".chalice/deployed", "boto3/", "botocore/")) for n in names)


def test_the_dry_run_plan_deploys_packaged_templates_and_never_chalice_deploy() -> None:
    lines: list[str] = []
    ctx = deploy.Context(stage=deploy.StageConfig.load("prod"), dry_run=True, log=lines.append)
    deploy.execute(deploy.plan(), ctx)
    text = "\n".join(lines)
    assert "chalice deploy" not in text
    assert "covidtracer-prod-email in us-west-2" in text
    assert "covidtracer-prod-waf-cloudfront in us-east-1" in text
    for service in SERVICE_NAMES:
        assert f"covidtracer-prod-service-{service} in ap-southeast-2 from build/{service}" in text
    assert '"AuthTriggersDeployed": "true"' in text  # the second identity deployment
    assert "covidtracer-enf-prod-migrate:prod" in text
    assert '"AlarmEmail": "alarms@health.example.nz"' in text
    assert "      Stage = prod" in text


def test_api_gateway_checks_the_cognito_access_token_on_the_contact_details_routes() -> None:
    body = _transformed("details")["Resources"]["RestAPI"]["Properties"]["Body"]
    authorizer = body["securityDefinitions"]["CognitoUserPool"]
    assert authorizer["x-amazon-apigateway-authorizer"]["providerARNs"] == ["userpoolarn-value"]
    methods = body["paths"]["/user/details"]
    assert set(methods) == {"get", "put", "patch", "delete"}
    for operation in methods.values():
        # With a scope the authorizer takes access tokens, which is what the app sends.
        assert operation["security"] == [{"CognitoUserPool": ["aws.cognito.signin.user.admin"]}]
    assert "security" not in body["paths"]["/user/auth/initiate"]["post"]
    assert "security" not in body["paths"]["/v2/user/location-history"]["post"]


def test_the_export_service_hands_its_usage_report_alias_to_the_analytics_schedule() -> None:
    outputs = _transformed("export")["Outputs"]
    assert outputs["UsageReportFunctionArn"]["Value"] == {"Ref": "UsageReportAliasprod"}
    lines: list[str] = []
    ctx = deploy.Context(stage=deploy.StageConfig.load("prod"), dry_run=True, log=lines.append)
    deploy.execute(deploy.plan(), ctx)
    text = "\n".join(lines)
    assert '"UsageReportFunctionArn": "<service-export output UsageReportFunctionArn>"' in text


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_shipped_bytecode_is_valid_whatever_the_zips_file_times(service: str) -> None:
    """Lambda's /var/task is read-only: bytecode Python rejects is recompiled every cold
    start. Hash-based unchecked .pyc files of the runtime's version are always accepted."""
    import importlib.util
    import sys

    with zipfile.ZipFile(BUILD / service / "deployment.zip") as archive:
        names = set(archive.namelist())
        pycs = [n for n in names if n.endswith(".pyc")]
        tag = sys.implementation.cache_tag
        assert f"__pycache__/app.{tag}.pyc" in names
        assert any(n.startswith("covidtracer/") for n in pycs)
        for name in pycs:
            data = archive.read(name)
            assert data[:4] == importlib.util.MAGIC_NUMBER, name
            flags = int.from_bytes(data[4:8], "little")
            assert flags == 0b01, name  # hash-based, not checked against the source
            folder, _, file = name.rpartition("__pycache__/")
            source = archive.read(folder + file.split(".")[0] + ".py")
            assert data[8:16] == importlib.util.source_hash(source), name


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_package_ships_only_what_its_app_imports_and_every_shipped_module_imports_there(
    service: str, tmp_path: Path
) -> None:
    with zipfile.ZipFile(BUILD / service / "deployment.zip") as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "task")
    shipped = {n for n in names if n.startswith("covidtracer/") and "__pycache__" not in n}
    wanted = vendor.files_for(vendor.closure(SERVICES / service / "app.py"))
    assert shipped == {f"{path.as_posix()}" for path in wanted}
    # No dev-only driver, test oracle or fake; schema migrations only where the schema is.
    assert not any(re.search(r"local_cognito|exportreader|fake|/tests?/", n) for n in names)
    assert any(n.endswith(".sql") for n in shipped) == (service == "enf")
    modules = sorted(
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in shipped
        if n.endswith(".py")
    )
    _in_lambda(tmp_path, f"for name in {modules!r}: importlib.import_module(name)\nimport app")


def _in_lambda(tmp_path: Path, code: str) -> str:
    """Runs ``code`` in the unpacked package (``tmp_path / "task"``) with only what the Lambda
    runtime provides beside it; returns its output (the test fails if it fails)."""
    path = [str(tmp_path / "task"), str(vendor.runtime_path(tmp_path))]
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "ap-southeast-2"}
    ran = subprocess.run(
        [
            sys.executable,
            "-S",
            "-I",
            "-c",
            f"import importlib, sys; sys.path[:0] = {path!r}\n{code}",
        ],
        cwd=tmp_path / "task",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran.stdout


# ---------------------------------------------------------------------------------------------
# AWS's documented limits and rules on the packaged templates (issue 18; docs/operations.md §12).

ACCOUNT, REGION = "123456789012", "ap-southeast-2"


def _realistic_outputs(stage: str) -> dict[str, str]:
    """Every stack output a packaged template reads, at the length AWS really gives it: a
    placeholder like ``usertable-value`` would hide a limit a real deployment hits."""
    a, r, s = ACCOUNT, REGION, stage

    def secret(name: str) -> str:  # Secrets Manager appends "-" and 6 random characters
        return f"arn:aws:secretsmanager:{r}:{a}:secret:covidtracer/{s}/{name}-AbCdEf"

    def queue(name: str) -> tuple[str, str]:
        return (
            f"https://sqs.{r}.amazonaws.com/{a}/covidtracer-{s}-{name}",
            f"arn:aws:sqs:{r}:{a}:covidtracer-{s}-{name}",
        )

    key = f"arn:aws:kms:{r}:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    pool = f"{r}_AbCdEfGhI"
    updates_url, updates_arn = queue("personal-data-updates")
    post_auth_url, post_auth_arn = queue("post-authentication")
    _, stream_failures_arn = queue("personal-details-stream-failures")
    return {
        "AnalyticsBucket": f"covidtracer-{s}-analytics-{a}",
        "AnalyticsBucketArn": f"arn:aws:s3:::covidtracer-{s}-analytics-{a}",
        "AnalyticsStreamArn": f"arn:aws:firehose:{r}:{a}:deliverystream/covidtracer-{s}-analytics",
        "AnalyticsStreamName": f"covidtracer-{s}-analytics",
        "ServiceEventsStreamArn": (
            f"arn:aws:firehose:{r}:{a}:deliverystream/covidtracer-{s}-service-events"
        ),
        "ServiceEventsSubscriptionRoleArn": (
            f"arn:aws:iam::{a}:role/covidtracer-{s}-analytics-ServiceEventsSubscriptionRole-"
            "AbCdEfGhIjKl"
        ),
        "ApiWebAclArn": (
            f"arn:aws:wafv2:{r}:{a}:regional/webacl/covidtracer-{s}-apis/"
            "a1b2c3d4-5678-90ab-cdef-111122223333"
        ),
        "AppleDeviceCheckKeySecretArn": secret("apple-devicecheck-key"),
        "DataKeyArn": key,
        "DatabaseHost": f"covidtracer-{s}-enf.proxy-c1a2b3c4d5e6.{r}.rds.amazonaws.com",
        "DatabaseKeyArn": key,
        "DatabaseSecretArn": secret("enf-database"),
        "EnfCodeHashSecretArn": secret("enf-code-hash"),
        "EnfExportsBucket": f"covidtracer-{s}-enf-exports-{a}",
        "EnfTokenSigningSecretArn": secret("enf-token-signing"),
        "ExportSigningKeyId": "mrk-1234abcd12ab34cd56ef1234567890ab",  # a multi-Region key
        "CertificateSigningKeyId": "1234abcd-12ab-34cd-56ef-1234567890ac",
        "RevisionTokenKeyArn": key,
        "EnfAppsSecretArn": secret("enf-apps"),
        "ExposureEventsTable": f"covidtracer-{s}-exposure-events",
        "FcmServiceAccountSecretArn": secret("fcm-service-account"),
        "FeedBucket": f"covidtracer-{s}-feed-{a}",
        # Cognito app client ids are 26 characters.
        "IosClientId": "1h2j3k4l5m6n7o8p9q0r1s2t3u",
        "AndroidClientId": "4v5w6x7y8z9a0b1c2d3e4f5g6h",
        "WebClientId": "7i8j9k0l1m2n3o4p5q6r7s8t9u",
        "LambdaSecurityGroupId": "sg-0123456789abcdef0",
        "NctsApiKeySecretArn": secret("ncts-api-key"),
        "PersonalDataUpdatesQueueArn": updates_arn,
        "PersonalDataUpdatesQueueUrl": updates_url,
        "PersonalDetailsStreamArn": (
            f"arn:aws:dynamodb:{r}:{a}:table/covidtracer-{s}-personal-details/stream/"
            "2026-01-01T00:00:00.000"
        ),
        "PersonalDetailsStreamFailuresQueueArn": stream_failures_arn,
        "PersonalDetailsTable": f"covidtracer-{s}-personal-details",
        "PostAuthenticationQueueArn": post_auth_arn,
        "PostAuthenticationQueueUrl": post_auth_url,
        "PrivateSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        "RateLimitsTable": f"covidtracer-{s}-rate-limits",
        "SenderAddress": "no-reply@tracing.example.nz",
        "SignInSessionsTable": f"covidtracer-{s}-sign-in-sessions",
        "SmsAuthTokenSecretArn": secret("sms-auth-token"),
        "UserDetailsBucket": f"covidtracer-{s}-user-details-{a}",
        "UserPoolArn": f"arn:aws:cognito-idp:{r}:{a}:userpool/{pool}",
        "UserPoolId": pool,
        "UsersTable": f"covidtracer-{s}-users",
    }


# Operator inputs still "REPLACE: …" in a stage file, at their real lengths (Apple's team and
# key ids are 10 characters).
REALISTIC_OPERATOR_INPUTS = {"EnfAppleTeamId": "A1B2C3D4E5", "EnfAppleKeyId": "ABC123DEFG"}
# Lambda: "The total size of all environment variables doesn't exceed 4 KB".
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html and
# https://docs.aws.amazon.com/lambda/latest/dg/limits.html
LAMBDA_ENVIRONMENT_LIMIT = 4096


def _realistic_environments(service: str, stage: str) -> dict[str, dict[str, str]]:
    """Each function's environment as Lambda would hold it in ``stage``."""
    template = _template(service)
    ctx = deploy.Context(stage=deploy.StageConfig.load(stage), dry_run=True, log=lambda _: None)
    ctx.outputs.update(_realistic_outputs(stage))
    parameters = deploy.service_parameters(service, template, ctx)
    unrealistic = sorted(k for k, v in parameters.items() if v.startswith(("<", "REPLACE")))
    assert set(unrealistic) <= set(REALISTIC_OPERATOR_INPUTS), f"give {unrealistic} real values"
    parameters.update({k: v for k, v in REALISTIC_OPERATOR_INPUTS.items() if k in parameters})
    return {
        name: {k: _substitute(v, parameters) for k, v in props["Environment"]["Variables"].items()}
        for name, props in _functions(template).items()
    }


@pytest.mark.parametrize("service", SERVICE_NAMES)
@pytest.mark.parametrize("stage", deploy.STAGES)
def test_every_functions_environment_fits_lambdas_4_kb_with_real_length_values(
    service: str, stage: str
) -> None:
    """Measured as the JSON Lambda stores (names, values, quotes and separators): more than
    the names and values alone, so the test errs on the side of the limit."""
    for function, environment in _realistic_environments(service, stage).items():
        size = len(json.dumps(environment, separators=(",", ":")).encode())
        assert size <= LAMBDA_ENVIRONMENT_LIMIT, f"{service}.{function}: {size} bytes"


def test_no_environment_carries_a_certificate_or_key_and_the_enf_package_ships_its_root() -> None:
    for service in SERVICE_NAMES:
        for environment in _realistic_environments(service, "prod").values():
            assert not any("-----BEGIN" in value for value in environment.values()), service
    environment = next(iter(_realistic_environments("enf", "prod").values()))
    root = f"covidtracer/enfkeys/attestation_roots/{environment['ANDROID_ATTESTATION_ROOT']}.pem"
    with zipfile.ZipFile(BUILD / "enf" / "deployment.zip") as archive:
        assert archive.read(root).startswith(b"-----BEGIN CERTIFICATE-----")


# The retentions CloudWatch Logs accepts (PutRetentionPolicy):
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = {
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_function_logs_to_a_log_group_of_its_stack_with_the_stages_retention(
    service: str,
) -> None:
    """Lambda otherwise creates /aws/lambda/<function> on first use, outside CloudFormation
    and with no retention (logs kept forever):
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html"""
    template = _template(service)
    resources = template["Resources"]
    functions = _functions(template)
    groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert set(groups) == {f"{name}LogGroup" for name in functions}
    for name, props in functions.items():
        group = groups[f"{name}LogGroup"]
        function_name = props["FunctionName"]["Fn::Sub"]
        assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert props["LoggingConfig"] == {"LogGroup": {"Ref": f"{name}LogGroup"}}
    assert set(template["Parameters"]["LogRetentionDays"]["AllowedValues"]) == LOG_RETENTION_DAYS
    for stage in deploy.STAGES:
        parameters = deploy.service_parameters(service, template, _context(stage))
        retention = deploy.StageConfig.load(stage).log_retention_days
        assert parameters["LogRetentionDays"] == str(retention)
    # After the SAM transform each function still names its own group.
    transformed = _transformed(service)["Resources"]
    for name in functions:
        assert transformed[name]["Properties"]["LoggingConfig"] == {
            "LogGroup": {"Ref": f"{name}LogGroup"}
        }


def test_the_personal_details_stream_mapping_isolates_a_poison_record_and_parks_its_batch() -> None:
    """Without failure handling Lambda retries a failing stream batch until its records expire
    (24 hours), blocking the shard, then drops them. Bisect the batch to find the record,
    bound the retries and the record age, and send what is given up to an SQS destination:
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-errors.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html"""
    (mapping,) = _event_source_mappings("export")
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 1 <= mapping["MaximumRetryAttempts"] <= 10
    # Given up well inside the stream's 24 hours, so the records can still be replayed.
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] <= 6 * 3600
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == _fake_outputs()["PersonalDetailsStreamFailuresQueueArn"]
    # The function's role sends there (Lambda sends with the execution role).
    role = _template("export")["Resources"]["DefaultRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert any(
        s["Action"] == ["sqs:SendMessage"]
        and s["Resource"] == {"Fn::Sub": "${PersonalDetailsStreamFailuresQueueArn}"}
        for s in statements
    )


def test_every_sqs_mapped_functions_queue_hides_a_message_six_times_the_functions_timeout() -> None:
    """Lambda: "set the source queue's visibility timeout to at least six times the timeout
    that you configure on your function":
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html"""
    messaging = cfn.load(TEMPLATES / "messaging.yaml")
    checked = 0
    for service in SERVICE_NAMES:
        for props in _functions(_template(service)).values():
            for event in props.get("Events", {}).values():
                if event["Type"] != "SQS":
                    continue
                output = messaging["Outputs"][event["Properties"]["Queue"]["Ref"]]
                queue = messaging["Resources"][output["Value"]["Fn::GetAtt"][0]]["Properties"]
                assert queue["VisibilityTimeout"] >= 6 * props["Timeout"], service
                checked += 1
    assert checked == 1  # the post-authentication consumer


# Security policies API Gateway offers an edge-optimized REST API's default endpoint, each
# refusing TLS 1.0 and 1.1 (without one the endpoint keeps the legacy TLS_1_0 policy):
# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies-list.html
EDGE_TLS_1_2_POLICIES = {"SecurityPolicy_TLS12_2018_EDGE", "SecurityPolicy_TLS12_PFS_2025_EDGE"}


@pytest.mark.parametrize("service", ["details", "enf"])
def test_each_api_refuses_tls_1_0_and_1_1(service: str) -> None:
    """An enhanced policy needs an endpoint access mode; BASIC keeps today's routing:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies.html
    """
    api = _transformed(service)["Resources"]["RestAPI"]["Properties"]
    assert api["EndpointConfiguration"] == {"Types": ["EDGE"]}
    body = api["Body"]
    assert body["x-amazon-apigateway-security-policy"] in EDGE_TLS_1_2_POLICIES
    assert body["x-amazon-apigateway-endpoint-access-mode"] == "BASIC"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_function_snapshots_its_published_versions(service: str) -> None:
    """Issue 22: SnapStart on each function that can use it (all of them: none has what AWS
    lists as incompatible), and CloudFormation's Lambda functions get it from the transform."""
    from tracerstack.package import snapstart_obstacles

    functions = _functions(_template(service))
    for name, props in functions.items():
        assert snapstart_obstacles(props) == [], name
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
    deployed = {
        name: r
        for name, r in _transformed(service)["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert set(deployed) == set(functions)
    for name, resource in deployed.items():
        assert resource["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        # Its log group exists before the version whose init (and logging) SnapStart runs.
        assert resource["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": f"{name}LogGroup"}}


def test_a_function_with_what_snapstart_cannot_take_is_left_without_it() -> None:
    from tracerstack.package import snapstart_obstacles

    base = {"Runtime": "python3.13", "AutoPublishAlias": "prod"}
    assert snapstart_obstacles(base) == []
    assert snapstart_obstacles({**base, "Runtime": "python3.11"})
    assert snapstart_obstacles({**base, "EphemeralStorage": {"Size": 1024}})
    assert snapstart_obstacles({**base, "FileSystemConfigs": [{"Arn": "x"}]})
    assert snapstart_obstacles({**base, "ProvisionedConcurrencyConfig": {"X": 1}})
    assert snapstart_obstacles({"Runtime": "python3.13"})  # $LATEST only


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_functions_log_group_carries_its_analytics_events_to_the_service_events_stream(
    service: str,
) -> None:
    from covidtracer.analytics.model import LOG_FILTER_PATTERN
    from tracerstack.package import log_group_id

    template = _template(service)
    resources = template["Resources"]
    subscriptions = {
        r["Properties"]["LogGroupName"]["Ref"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::SubscriptionFilter"
    }
    for name, props in _functions(template).items():
        group = log_group_id(name)
        # Lambda's own name for the function's group, made before the function (whose
        # SnapStart init logs as soon as a version is published).
        name_sub = resources[group]["Properties"]["LogGroupName"]["Fn::Sub"]
        assert name_sub == "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]
        assert resources[name]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}
        assert subscriptions[group] == {
            "LogGroupName": {"Ref": group},
            "FilterPattern": LOG_FILTER_PATTERN,
            "DestinationArn": {"Ref": "ServiceEventsStreamArn"},
            "RoleArn": {"Ref": "ServiceEventsSubscriptionRoleArn"},
        }
    assert len(subscriptions) == len(_functions(template))
    # The functions put nothing into Firehose themselves: CloudWatch Logs does.
    assert "firehose:" not in json.dumps(resources["DefaultRole"])
    analytics = cfn.load(TEMPLATES / "analytics.yaml")
    assert {"ServiceEventsStreamArn", "ServiceEventsSubscriptionRoleArn"} <= set(
        analytics["Outputs"]
    )


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_package_registers_the_snapstart_hooks_and_stays_within_10_mb(
    service: str, tmp_path: Path
) -> None:
    package = BUILD / service / "deployment.zip"
    assert package.stat().st_size <= 10_000_000
    with zipfile.ZipFile(package) as archive:
        assert not any(n.startswith("snapshot_restore_py") for n in archive.namelist())
        archive.extractall(tmp_path / "task")
    out = _in_lambda(
        tmp_path,
        "import app, snapshot_restore_py as hooks\n"
        "print([f.__qualname__ for f, _, _ in hooks.get_before_snapshot()],"
        " [f.__qualname__ for f, _, _ in hooks.get_after_restore()])",
    )
    assert out.split("\n")[-2] == "['before_snapshot'] ['after_restore']"
