"""``make package``: each service as one stage-independent CloudFormation template and its zip.

``chalice package`` (Chalice's documented CI/CD path) writes a SAM template and the
deployment zip; this module then makes that template the whole, declarative description of
the service, so a pipeline packages once and deploys the same artefacts to dev, staging and
prod, and a deployment from any clone updates the same stack:

- every stage-specific value is a template parameter (``Stage``, ``MemorySize`` and each stack
  output the service reads or is granted), so the template holds no account, stage or
  resource name and two clones of one commit package identical templates;
- functions get Chalice's names (``covidtracer-<service>-<stage>[-<function>]``), the
  release version as a tag and in ``RELEASE_VERSION`` (``GET /health`` reports it), and a
  published version behind an alias named after the stage, which every event source, the
  API and Cognito invoke;
- event sources made elsewhere before become resources here: the PersonalDetails stream
  (bisected on error, bounded retries and record age, failed batches parked in an SQS
  queue), the post-authentication queue (partial batch failures), Cognito's invoke
  permissions, the regional WAF association of both APIs;
- each function's log group is a resource of the stack (``<Function>LogGroup``) with the
  stage's retention, never one Lambda makes on first use;
- the execution role carries exactly the resources the service uses
  (``tracerstack.iam.statements``, enforced on the local stack and in the tests);
- the APIs answer API Gateway's own errors (unknown route, missing auth, throttling, WAF,
  5xx) in the documented error shape, refuse TLS 1.0 and 1.1, and the ENF API returns export
  zips as bytes to any ``Accept`` (iOS sends ``*/*``; CLIENTS.md).

The output is ``build/<service>/template.json``, ``deployment.zip`` and ``release.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from covidtracer import errors
from covidtracer.analytics.model import LOG_FILTER_PATTERN
from tracerstack import REPO_ROOT, SERVICE_NAMES, SERVICES, TEMPLATES, cfn
from tracerstack.environment import from_outputs, google_contract_environment
from tracerstack.iam.statements import service_policy
from tracerstack.release import release_version

BUILD = REPO_ROOT / "build"
PACKAGE_STAGE = "release"  # the Chalice stage that holds nothing stage-specific
STAGE_VALUES = ("dev", "staging", "prod")

# Deployment inputs that are not stack outputs: they come from infra/stages/<stage>.json.
STAGE_PARAMETERS = {
    "Stage": "name",
    "SesRegion": "ses_region",
    "NctsBaseUrl": "ncts_base_url",
    "AttestationPlatforms": "attestation_platforms",
    "LogRetentionDays": "log_retention_days",
}
# The PersonalDetails stream mapping's failure handling (DESIGN §3): a failing batch is split
# to isolate a bad record, retried at most this often and for at most this long, then parked
# in an SQS queue (docs/operations.md §5 replays it). Six hours leaves the operator 18 of the
# stream's 24 hours to replay from the stream itself.
# https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-errors.html
STREAM_MAX_RETRY_ATTEMPTS = 5
STREAM_MAX_RECORD_AGE_SECONDS = 6 * 3600
# The ENF service's operator-supplied settings (infra/stages/<stage>.json "enf_environment").
ENF_OPERATOR_VARIABLES = (
    "SMS_PROVIDER",
    "SMS_SENDER",
    "ANDROID_PACKAGE_NAME",
    "ANDROID_ATTESTATION_ROOT",
    "APPLE_TEAM_ID",
    "APPLE_KEY_ID",
)
# Routes whose bearer token API Gateway's Cognito authorizer checks (DESIGN §2.2); the app
# then reads the caller from the authorizer's claims. The ENF API checks its own tokens.
COGNITO_AUTHENTICATED_PATHS = {"details": ("/user/details",)}
# The scope of every Cognito access token: an authorizer with a scope takes access tokens
# (the app sends the accessToken from /user/auth/confirm), without one it wants ID tokens.
COGNITO_ACCESS_SCOPE = "aws.cognito.signin.user.admin"


class _Placeholders(dict[str, str]):
    """Stands in for the stack outputs: ``outputs[name]`` is ``${name}`` and is recorded, so
    the rules that build environments and policies from outputs also build the template."""

    def __init__(self) -> None:
        super().__init__()
        self.used: list[str] = []

    def __missing__(self, key: str) -> str:
        self.need(key)
        return "${" + key + "}"

    def need(self, *keys: str) -> None:
        """Record outputs the template refers to other than through ``outputs[name]``."""
        self.used.extend(key for key in keys if key not in self.used)


def _sub(value: str) -> Any:
    return {"Fn::Sub": value} if "${" in value else value


def _environment(service: str, outputs: _Placeholders) -> dict[str, Any]:
    env = from_outputs(
        outputs,
        stage="${Stage}",
        ses_region="${SesRegion}",
        ncts_base_url="${NctsBaseUrl}",
        attestation_platforms="${AttestationPlatforms}",
    )
    if service == "enf":
        env["DATABASE_HOST"] = outputs["DatabaseHost"]
        env["DATABASE_SECRET_ID"] = outputs["DatabaseSecretArn"]
        env["APPLE_DEVICECHECK_KEY_SECRET_ID"] = outputs["AppleDeviceCheckKeySecretArn"]
        for name in ENF_OPERATOR_VARIABLES:
            env[name] = "${" + _parameter_name(name) + "}"
        env.update(google_contract_environment(outputs))
    return {name: _sub(value) for name, value in env.items()}


def _parameter_name(variable: str) -> str:
    return "Enf" + "".join(part.capitalize() for part in variable.split("_"))


def _function_suffix(logical_id: str) -> str:
    """Chalice's function name from its resource name: ``PreSignUp`` -> ``-pre_sign_up``."""
    if logical_id == "APIHandler":
        return ""
    return "-" + re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()


def role_policy(service: str) -> tuple[dict[str, Any], list[str]]:
    """The policy document of ``service``'s execution role exactly as its packaged template
    holds it (``Fn::Sub`` over the stack's parameters), and the stack outputs it refers to.
    The local stack resolves the same document to its own ARNs (``tracerstack.iam.roles``)."""
    outputs = _Placeholders()
    return _policy(service, outputs), outputs.used


def _policy(service: str, outputs: _Placeholders) -> dict[str, Any]:
    policy = service_policy(service, outputs)
    for statement in policy["Statement"]:
        statement["Resource"] = _sub_all(statement["Resource"])
        if "Condition" in statement:
            statement["Condition"] = _sub_all(statement["Condition"])
    return policy


def _sub_all(value: Any) -> Any:
    if isinstance(value, str):
        return _sub(value)
    if isinstance(value, list):
        return [_sub_all(v) for v in value]
    if isinstance(value, dict):
        return {k: _sub_all(v) for k, v in value.items()}
    return value


def _problem(error: type[errors.DomainError], status: int | None = None) -> dict[str, Any]:
    body = {"type": error.type, "title": error.title, "status": status or error.status}
    return {
        "statusCode": str(status or error.status),
        "responseParameters": {
            "gatewayresponse.header.Cache-Control": "'no-store'",
            "gatewayresponse.header.Content-Type": "'application/problem+json'",
        },
        "responseTemplates": {"application/json": json.dumps(body, separators=(",", ":"))},
    }


def gateway_responses() -> dict[str, Any]:
    """API Gateway's own answers, in the error shape of DESIGN §2 (never its raw message)."""
    return {
        # An unknown route or method: API Gateway says 403 "Missing Authentication Token".
        "MISSING_AUTHENTICATION_TOKEN": _problem(errors.NotFound, 404),
        "RESOURCE_NOT_FOUND": _problem(errors.NotFound, 404),
        "UNAUTHORIZED": _problem(errors.Unauthorized),
        "ACCESS_DENIED": _problem(errors.Unauthorized, 401),
        "EXPIRED_TOKEN": _problem(errors.Unauthorized, 401),
        "INVALID_SIGNATURE": _problem(errors.Unauthorized, 401),
        "THROTTLED": _problem(errors.TooManyRequests),
        "QUOTA_EXCEEDED": _problem(errors.TooManyRequests),
        # A managed WAF rule's block (the web ACL's own rules answer with custom responses,
        # which take precedence: edge.yaml). A refusal, not a rate limit: a 429 would promise
        # a Retry-After.
        "WAF_FILTERED": _problem(errors.Forbidden),
        "REQUEST_TOO_LARGE": _problem(errors.ValidationError, 413),
        "UNSUPPORTED_MEDIA_TYPE": _problem(errors.ValidationError, 415),
        "BAD_REQUEST_BODY": _problem(errors.ValidationError),
        "DEFAULT_4XX": _problem(errors.ValidationError),
        "INTEGRATION_TIMEOUT": _problem(errors.Unavailable),
        "INTEGRATION_FAILURE": _problem(errors.Unavailable),
        "DEFAULT_5XX": _problem(errors.InternalError),
    }


def finish_template(service: str, template: dict[str, Any], version: str) -> dict[str, Any]:
    """Turn ``chalice package``'s SAM template into the service's deployable template."""
    sized = {
        name
        for name, function in _release_stage(service).get("lambda_functions", {}).items()
        if "lambda_memory_size" in function
    }
    outputs = _Placeholders()
    environment = _environment(service, outputs)
    environment["RELEASE_VERSION"] = version
    policy = _policy(service, outputs)
    resources: dict[str, Any] = template["Resources"]

    resources["DefaultRole"]["Properties"]["Policies"] = [
        {"PolicyName": f"covidtracer-{service}", "PolicyDocument": policy}
    ]
    resources["DefaultRole"]["Properties"]["Tags"] = _tag_list(service, version)
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    for name in functions:
        props = resources[name]["Properties"]
        props["FunctionName"] = {
            "Fn::Sub": f"covidtracer-{service}-${{Stage}}{_function_suffix(name)}"
        }
        props["Environment"] = {"Variables": environment}
        if _function_suffix(name).lstrip("-") not in sized:
            # Sized per function in the release stage (e.g. the daily report), else per stage.
            props["MemorySize"] = {"Ref": "MemorySize"}
        props["Tags"] = _tags(service, version)
        props["AutoPublishAlias"] = {"Ref": "Stage"}
        _log_group(resources, name)
        if service == "enf":
            # Beside RDS Proxy in the private subnets; the endpoints and NAT reach the rest.
            props["VpcConfig"] = {
                "SubnetIds": {"Fn::Split": [",", {"Ref": "PrivateSubnetIds"}]},
                "SecurityGroupIds": [{"Ref": "LambdaSecurityGroupId"}],
            }
            outputs.need("PrivateSubnetIds", "LambdaSecurityGroupId")

    _analytics_subscriptions(resources, functions, outputs)
    _snapstart(resources, functions)

    if service == "export":
        events = resources["QueueChangedPersonalDetails"]["Properties"]["Events"]
        for event in events.values():
            event["Properties"]["Stream"] = {"Ref": "PersonalDetailsStreamArn"}
            _stream_failure_handling(event["Properties"], resources, outputs)
        outputs.need("PersonalDetailsStreamArn")
        # The analytics stack schedules the daily report once this output exists.
        template.setdefault("Outputs", {})["UsageReportFunctionArn"] = {
            "Value": {"Ref": "UsageReport.Alias"}
        }
    if service == "auth":
        _auth_event_sources(resources, outputs)
    if "RestAPI" in resources:
        _finish_api(service, resources, outputs)

    template["Parameters"] = _parameters(service, outputs.used)
    template["Description"] = (
        f"NZ COVID Tracer {service} service, release {version} (packaged by `make package`)"
    )
    return _sorted(template)


def log_group_id(function: str) -> str:
    """The logical id of a function's log group."""
    return f"{function}LogGroup"


def _tls_policy(body: dict[str, Any]) -> None:
    """TLS 1.2 or later on the API's own (execute-api) endpoint, which otherwise keeps the
    legacy TLS_1_0 policy. Every phone that runs the app speaks TLS 1.2. An enhanced policy
    needs an endpoint access mode; BASIC keeps how requests reach the API today:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-security-policies.html
    """
    body["x-amazon-apigateway-security-policy"] = "SecurityPolicy_TLS12_2018_EDGE"
    body["x-amazon-apigateway-endpoint-access-mode"] = "BASIC"


def _log_group(resources: dict[str, Any], function: str) -> None:
    """The function's log group as a resource of its stack, ``<Function>LogGroup``, with the
    stage's retention. Left to Lambda, /aws/lambda/<name> is made on first use, outside
    CloudFormation, keeping logs forever:
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html
    Subscription filters and metric filters attach to these logical ids."""
    props = resources[function]["Properties"]
    group = log_group_id(function)
    resources[group] = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]},
            "RetentionInDays": {"Ref": "LogRetentionDays"},
        },
    }
    # Naming the group (not only matching its name) makes CloudFormation create it first.
    props["LoggingConfig"] = {"LogGroup": {"Ref": group}}


def _stream_failure_handling(
    event: dict[str, Any], resources: dict[str, Any], outputs: _Placeholders
) -> None:
    """A poison record must neither block the PersonalDetails shard for the stream's 24 hours
    nor, after them, be dropped with every change behind it (see STREAM_MAX_* above)."""
    event["BisectBatchOnFunctionError"] = True
    event["MaximumRetryAttempts"] = STREAM_MAX_RETRY_ATTEMPTS
    event["MaximumRecordAgeInSeconds"] = STREAM_MAX_RECORD_AGE_SECONDS
    # The handler answers with the first bad record (nctsexport.stream.StreamBatch).
    event["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    event["DestinationConfig"] = {
        "OnFailure": {"Destination": {"Ref": "PersonalDetailsStreamFailuresQueueArn"}}
    }
    outputs.need("PersonalDetailsStreamFailuresQueueArn")
    # Lambda sends to the destination with the function's execution role: the export's
    # statements grant it (tracerstack.iam.statements).


def _analytics_subscriptions(
    resources: dict[str, Any], functions: list[str], outputs: _Placeholders
) -> None:
    """Each function's analytics events (its log lines that match the schema's filter) go to
    the service-events Firehose stream through a subscription filter on its log group
    (``_log_group``); the analytics stack holds the stream and the role CloudWatch Logs
    assumes to write to it. The group is made before the function (its ``LoggingConfig`` names
    it), so Lambda does not create it first when a version is published (SnapStart runs the
    init then, which logs).
    """
    for name in functions:
        group = log_group_id(name)
        resources[f"{name}AnalyticsSubscription"] = {
            "Type": "AWS::Logs::SubscriptionFilter",
            "Properties": {
                "LogGroupName": {"Ref": group},
                "FilterPattern": LOG_FILTER_PATTERN,
                "DestinationArn": {"Ref": "ServiceEventsStreamArn"},
                "RoleArn": {"Ref": "ServiceEventsSubscriptionRoleArn"},
            },
        }
    outputs.need("ServiceEventsStreamArn", "ServiceEventsSubscriptionRoleArn")


# What SnapStart cannot be combined with, from AWS's list of its limitations
# (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html#snapstart-runtimes): a
# runtime other than Java 11+, Python 3.12+ and .NET 8+ (or a container image), provisioned
# concurrency, an EFS file system, ephemeral storage over 512 MB.
SNAPSTART_RUNTIMES = re.compile(
    r"^(java(1[1-9]|[2-9]\d)|python3\.(1[2-9]|[2-9]\d)|dotnet([89]|\d\d))$"
)
SNAPSTART_MAX_EPHEMERAL_MB = 512


def snapstart_obstacles(function: Mapping[str, Any]) -> list[str]:
    """Why SnapStart cannot be turned on for a function's properties (empty: it can)."""
    obstacles = []
    runtime = function.get("Runtime")
    if function.get("PackageType") == "Image" or not isinstance(runtime, str):
        obstacles.append("a container image (SnapStart needs a managed runtime)")
    elif not SNAPSTART_RUNTIMES.match(runtime):
        obstacles.append(f"runtime {runtime} (SnapStart: Java 11+, Python 3.12+, .NET 8+)")
    if function.get("ProvisionedConcurrencyConfig"):
        obstacles.append("provisioned concurrency")
    if function.get("FileSystemConfigs"):
        obstacles.append("an Amazon EFS file system")
    storage = function.get("EphemeralStorage", {}).get("Size", SNAPSTART_MAX_EPHEMERAL_MB)
    if not isinstance(storage, int) or storage > SNAPSTART_MAX_EPHEMERAL_MB:
        obstacles.append(f"ephemeral storage of {storage} MB (at most 512 MB)")
    if "AutoPublishAlias" not in function:
        obstacles.append("no published versions ($LATEST has no snapshot)")
    return obstacles


def _snapstart(resources: dict[str, Any], functions: list[str]) -> None:
    """SnapStart on every function that can use it: Lambda runs the init once per published
    version and resumes new execution environments from its snapshot
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html); the apps do their
    expensive work at init and redo what must differ per environment after each restore
    (``covidtracer.snapstart``)."""
    for name in functions:
        props = resources[name]["Properties"]
        if not snapstart_obstacles(props):
            props["SnapStart"] = {"ApplyOn": "PublishedVersions"}


def _release_stage(service: str) -> dict[str, Any]:
    config = json.loads((SERVICES / service / ".chalice" / "config.json").read_text())
    stage: dict[str, Any] = config["stages"][PACKAGE_STAGE]
    return stage


def _auth_event_sources(resources: dict[str, Any], outputs: _Placeholders) -> None:
    consumer = resources["PostAuthenticationConsumer"]["Properties"]
    # One bad message is retried (and parked in the DLQ after 5 receives) without
    # repeating the batch: the consumer answers SQS's partial-batch shape.
    consumer["Events"] = {
        "PostAuthenticationQueue": {
            "Type": "SQS",
            "Properties": {
                "Queue": {"Ref": "PostAuthenticationQueueArn"},
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        }
    }
    for trigger in (
        "PreSignUp",
        "DefineAuthChallenge",
        "CreateAuthChallenge",
        "VerifyAuthChallengeResponse",
        "PostAuthentication",
    ):
        resources[f"{trigger}CognitoPermission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": f"{trigger}.Alias"},
                "Principal": "cognito-idp.amazonaws.com",
                "SourceArn": {"Ref": "UserPoolArn"},
            },
        }
    outputs.need("PostAuthenticationQueueArn", "UserPoolArn")


def _finish_api(service: str, resources: dict[str, Any], outputs: _Placeholders) -> None:
    api = resources["RestAPI"]["Properties"]
    body = api["DefinitionBody"]
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    authenticated = COGNITO_AUTHENTICATED_PATHS.get(service, ())
    if authenticated:
        body.setdefault("securityDefinitions", {})["CognitoUserPool"] = {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "cognito_user_pools",
            "x-amazon-apigateway-authorizer": {
                "type": "cognito_user_pools",
                "providerARNs": [{"Ref": "UserPoolArn"}],
            },
        }
        for path in authenticated:
            for operation in body["paths"][path].values():
                operation["security"] = [{"CognitoUserPool": [COGNITO_ACCESS_SCOPE]}]
        outputs.need("UserPoolArn")
    if service == "enf":
        # API Gateway returns a binary body as bytes only when the request's Accept matches
        # a binary media type; iOS asks for the export zips with Accept: */*.
        body["x-amazon-apigateway-binary-media-types"] = ["*/*"]
    _tls_policy(body)
    # The API calls the stage's alias, so a deployment switches versions atomically.
    for path in body["paths"].values():
        for operation in path.values():
            integration = operation.get("x-amazon-apigateway-integration", {})
            uri = integration.get("uri", {})
            if isinstance(uri, dict) and "Fn::Sub" in uri:
                uri["Fn::Sub"] = uri["Fn::Sub"].replace("${APIHandler.Arn}", "${APIHandler.Alias}")
    resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] = {
        "Ref": "APIHandler.Alias"
    }
    resources["ApiWebAclAssociation"] = {
        "Type": "AWS::WAFv2::WebACLAssociation",
        "Properties": {
            "WebACLArn": {"Ref": "ApiWebAclArn"},
            "ResourceArn": {
                "Fn::Sub": (
                    "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
                    "${RestAPI}/stages/${RestAPI.Stage}"
                )
            },
        },
    }
    outputs.need("ApiWebAclArn")


def _parameters(service: str, used: Iterable[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "Stage": {"Type": "String", "AllowedValues": list(STAGE_VALUES)},
        "MemorySize": {
            "Type": "Number",
            "MinValue": 128,
            "MaxValue": 10240,
            "Description": "Lambda memory (MB), from the stage in .chalice/config.json",
        },
        "SesRegion": {"Type": "String", "Description": "The region of the SES identity"},
        "NctsBaseUrl": {"Type": "String", "Description": "NCTS REST API base URL"},
        "AttestationPlatforms": {"Type": "String", "Description": "e.g. ios,android"},
        "LogRetentionDays": {
            "Type": "Number",
            # The retentions CloudWatch Logs accepts, as the database stack lists them.
            "AllowedValues": cfn.load(TEMPLATES / "database.yaml")["Parameters"][
                "LogRetentionDays"
            ]["AllowedValues"],
            "Description": "Days the functions' log groups keep events (infra/stages/<stage>.json)",
        },
    }
    for name in used:
        if name in parameters:
            continue
        parameters[name] = {"Type": "String", "Description": f"Stack output {name}"}
    if service == "enf":
        for variable in ENF_OPERATOR_VARIABLES:
            parameters[_parameter_name(variable)] = {
                "Type": "String",
                "Description": f"{variable} (infra/stages/<stage>.json enf_environment)",
            }
    return parameters


def _tags(service: str, version: str) -> dict[str, str]:
    return {"covidtracer:service": service, "covidtracer:version": version}


def _tag_list(service: str, version: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in _tags(service, version).items()]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def revalidate_bytecode(archive: Path) -> int:
    """Make the bytecode in a deployment zip valid where Lambda runs it; returns its count.

    pip compiles what it vendors, stamping each ``.pyc`` with the source's file time, but the
    zip stores 1980 for every file, so Python rejects all of it and recompiles every module
    on every cold start (``/var/task`` is read-only). Hash-based, unchecked ``.pyc`` files
    are valid whatever the file times. The package is built by the runtime's Python (3.13),
    so the bytecode is the runtime's. Only modules that already had bytecode (the vendored
    core) and ``app.py`` get it: compiling every wheel would push the ENF zip past 10 MB.
    """
    import importlib.util
    import zipfile
    from importlib._bootstrap_external import (  # type: ignore[attr-defined]
        _code_to_hash_pyc,
    )

    tag = sys.implementation.cache_tag

    def pyc_name(source: str) -> str:
        folder, _, name = source.rpartition("/")
        return f"{folder + '/' if folder else ''}__pycache__/{name[:-3]}.{tag}.pyc"

    with zipfile.ZipFile(archive) as original:
        entries = [(info, original.read(info)) for info in original.infolist()]
    names = {info.filename for info, _ in entries}
    sources = {info.filename: data for info, data in entries if info.filename.endswith(".py")}
    wanted = {pyc_name(src) for src in sources if pyc_name(src) in names} | {pyc_name("app.py")}
    compiled = 0
    rebuilt = archive.with_suffix(".tmp")
    with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in entries:
            if info.filename.endswith(".pyc"):
                continue
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
            if info.filename in sources and pyc_name(info.filename) in wanted:
                code = compile(data, info.filename, "exec", dont_inherit=True)
                pyc = _code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)
                entry = zipfile.ZipInfo(pyc_name(info.filename), date_time=info.date_time)
                entry.external_attr = info.external_attr
                out.writestr(entry, bytes(pyc), compress_type=zipfile.ZIP_DEFLATED)
                compiled += 1
    rebuilt.replace(archive)
    return compiled


def package(service: str, version: str, build: Path = BUILD) -> Path:
    """Run ``chalice package`` for one (vendored) service and finish its template."""
    out = build / service
    shutil.rmtree(out, ignore_errors=True)
    chalice = str(Path(sys.executable).parent / "chalice")
    subprocess.run(
        [chalice, "package", "--stage", PACKAGE_STAGE, str(out)],
        cwd=SERVICES / service,
        check=True,
        stdout=subprocess.DEVNULL,
        env={"PATH": str(Path(sys.executable).parent), "AWS_DEFAULT_REGION": "ap-southeast-2"},
    )
    revalidate_bytecode(out / "deployment.zip")
    sam = out / "sam.json"
    template = finish_template(service, json.loads(sam.read_text()), version)
    sam.unlink()
    (out / "template.json").write_text(json.dumps(template, indent=1) + "\n")
    (out / "release.json").write_text(json.dumps({"service": service, "version": version}) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Package the services for CloudFormation")
    parser.add_argument("services", nargs="*", default=list(SERVICE_NAMES))
    args = parser.parse_args()
    version = release_version()
    for service in args.services:
        out = package(service, version)
        print(f"packaged {service} {version} -> {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
