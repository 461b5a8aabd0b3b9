from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tracerstack import TEMPLATES, cfn
from tracerstack.bootstrap import _CREATORS, SKIPPED_TYPES, TEMPLATE_ORDER


def _resolver(**refs: str) -> cfn.Resolver:
    return cfn.Resolver(
        parameters={"Stage": "dev", "AWS::AccountId": "111"},
        refs=refs,
        attributes={"Queue": {"Arn": "arn:aws:sqs:q"}},
        exports={"covidtracer-dev-Table": "tbl"},
        conditions={"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Stage"}, "dev"),
        ({"Fn::Sub": "covidtracer-${Stage}-feed-${AWS::AccountId}"}, "covidtracer-dev-feed-111"),
        ({"Fn::Sub": "${Queue.Arn}/x"}, "arn:aws:sqs:q/x"),
        ({"Fn::Sub": ["${A}-${Stage}", {"A": "a"}]}, "a-dev"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:q"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}, "a/dev"),
        ({"Fn::ImportValue": {"Fn::Sub": "covidtracer-${Stage}-Table"}}, "tbl"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "small"),
        ({"deep": [{"Ref": "Stage"}]}, {"deep": ["dev"]}),
        ({"a": 1, "b": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}}, {"a": 1}),
    ],
)
def test_intrinsic_functions_resolve(value: object, expected: object) -> None:
    assert _resolver()(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Fn::GetAtt": ["Queue", "Url"]},
        {"Fn::ImportValue": "nope"},
        {"Fn::Base64": "x"},
    ],
)
def test_what_cannot_be_resolved_is_an_error_not_a_guess(value: object) -> None:
    with pytest.raises(cfn.TemplateError):
        _resolver()(value)


def test_yaml_short_forms_load_as_intrinsic_functions(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      N: !Sub a-${Stage}\n      Q: !GetAtt Queue.Arn\n      R: !Ref Stage\n"
    )
    properties = cfn.load(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "N": {"Fn::Sub": "a-${Stage}"},
        "Q": {"Fn::GetAtt": ["Queue", "Arn"]},
        "R": {"Ref": "Stage"},
    }


def test_every_resource_type_in_the_templates_is_created_or_knowingly_skipped() -> None:
    types = {
        resource["Type"]
        for name in TEMPLATE_ORDER
        for resource in cfn.load(TEMPLATES / f"{name}.yaml")["Resources"].values()
    }
    assert types <= set(_CREATORS) | SKIPPED_TYPES


# ---------------------------------------------------------------------------------------------
# AWS's documented rules, read off the source templates (issue 18; docs/operations.md §12).


def _resources(template: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = cfn.load(TEMPLATES / f"{template}.yaml")["Resources"]
    return {k: r for k, r in resources.items() if kind is None or r["Type"] == kind}


def _all_resources(kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{path.stem}.{name}": resource
        for path in sorted(TEMPLATES.glob("*.yaml"))
        for name, resource in _resources(path.stem, kind).items()
    }


# The interface and gateway endpoints AWS offers for the APIs the ENF Lambdas call, each with
# the page that names it. A name not in this list does not exist as far as this test knows
# (issue 18 item 1: `sms-voice` was never an endpoint service), so adding an endpoint means
# adding its documented name here.
VPC_ENDPOINT_SERVICES = {
    # https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
    "s3": ("Gateway", "s3"),
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html
    "secretsmanager": ("Interface", "secretsmanager"),
    # https://docs.aws.amazon.com/kms/latest/developerguide/kms-vpc-endpoint.html
    "kms": ("Interface", "kms"),
    # AWS End User Messaging SMS: "Create an interface endpoint ... using the following service
    # name: com.amazonaws.region.pinpoint-sms-voice-v2"
    # https://docs.aws.amazon.com/sms-voice/latest/userguide/vpc-interface-endpoints.html
    "pinpoint-sms-voice-v2": ("Interface", "pinpoint-sms-voice-v2"),
    # https://docs.aws.amazon.com/firehose/latest/dev/vpc.html
    "kinesis-firehose": ("Interface", "firehose"),
    # https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html
    "ssm": ("Interface", "ssm"),
    # CloudWatch metrics (PutMetricData):
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-interface-VPC.html
    "monitoring": ("Interface", "cloudwatch"),
}


def test_every_vpc_endpoint_names_a_service_aws_documents() -> None:
    endpoints = _resources("network", "AWS::EC2::VPCEndpoint")
    assert endpoints
    for name, endpoint in endpoints.items():
        props = endpoint["Properties"]
        service = props["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        assert service in VPC_ENDPOINT_SERVICES, f"{name}: {service} is not a documented endpoint"
        assert props["VpcEndpointType"] == VPC_ENDPOINT_SERVICES[service][0], name


def test_every_aws_api_the_enf_functions_call_has_an_endpoint_in_their_vpc() -> None:
    """The network stack promises the in-VPC Lambdas reach every AWS API without the NAT."""
    from tracerstack import SERVICES, vendor

    sources = vendor.files_for(vendor.closure(SERVICES / "enf" / "app.py"))
    called: set[str] = set()
    for relative in sources:
        if relative.suffix == ".py":
            text = (vendor.SOURCE / relative).read_text()
            called |= set(re.findall(r"""\bclient\(\s*["']([a-z0-9-]+)["']""", text))
    boto3_names = {name for _, name in VPC_ENDPOINT_SERVICES.values()}
    endpoints = {
        e["Properties"]["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        for e in _resources("network", "AWS::EC2::VPCEndpoint").values()
    }
    assert "pinpoint-sms-voice-v2" in called and "kms" in called
    # aws.py's getters for DynamoDB, SQS, Cognito and SES ship everywhere; ENF never calls them.
    assert called - {"dynamodb", "sqs", "cognito-idp", "ses"} <= boto3_names
    for service, (_, boto3_name) in VPC_ENDPOINT_SERVICES.items():
        if boto3_name in called:
            assert service in endpoints, f"no VPC endpoint for {boto3_name}"


def test_the_proxy_target_group_waits_for_the_writer_instance() -> None:
    """RDS Proxy registers the cluster's instances when the target group is created; created
    beside the writer, the registration races the instance becoming available. DependsOn:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html
    """
    target_group = _resources("database")["ProxyTargetGroup"]
    depends_on = target_group.get("DependsOn", [])
    assert "WriterInstance" in ([depends_on] if isinstance(depends_on, str) else depends_on)


def test_the_proxy_refuses_a_borrow_before_the_services_database_deadline() -> None:
    """A request waiting on a busy proxy gets the proxy's refusal (a 503) before the client's
    own statement deadline, itself far inside API Gateway's 29 s."""
    from covidtracer.settings import DatabaseSettings

    pool = _resources("database")["ProxyTargetGroup"]["Properties"]
    borrow_seconds = pool["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"]
    default_ms = DatabaseSettings.__dataclass_fields__["query_timeout_ms"].default
    assert borrow_seconds * 1000 < default_ms


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_cloudwatch_may_use_the_alarm_topics_key() -> None:
    """An SNS topic encrypted with the AWS managed key alias/aws/sns cannot receive CloudWatch
    alarms: its policy cannot be changed to let cloudwatch.amazonaws.com use it. A customer
    managed key must grant CloudWatch kms:Decrypt and kms:GenerateDataKey*:
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    """
    resources = _resources("observability")
    key_ref = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    assert isinstance(key_ref, dict), "an AWS managed key (alias/aws/...) cannot grant CloudWatch"
    key_name = key_ref.get("Ref") or key_ref["Fn::GetAtt"][0]
    key = resources[key_name]
    assert key["Type"] == "AWS::KMS::Key"
    grants = [
        s
        for s in _statements(key["Properties"]["KeyPolicy"])
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(grants) == 1
    assert _actions(grants[0]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_keys_and_secrets_outlive_their_stack() -> None:
    """Phones hold the export-signing key's public half, the database key decrypts the final
    snapshot, secrets hold what partners were given: deleting or replacing their stack must
    not delete them. DeletionPolicy and UpdateReplacePolicy:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html
    """
    kept = {
        **_all_resources("AWS::KMS::Key"),
        **_all_resources("AWS::KMS::ReplicaKey"),
        **_all_resources("AWS::SecretsManager::Secret"),
    }
    assert {"data.ExportSigningKey", "database.DatabaseKey", "data.NctsApiKeySecret"} <= set(kept)
    for name, resource in kept.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def _bucket_rules(template: str, bucket: str) -> list[dict[str, Any]]:
    props = _resources(template)[bucket]["Properties"]
    rules: list[dict[str, Any]] = props.get("LifecycleConfiguration", {}).get("Rules", [])
    return [rule for rule in rules if rule["Status"] == "Enabled"]


def test_every_versioned_bucket_expires_its_noncurrent_versions() -> None:
    """A deleted or overwritten object of a versioned bucket stays as a noncurrent version
    until a lifecycle rule expires it, so a retention the jobs enforce holds only with one:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html
    """
    buckets = _all_resources("AWS::S3::Bucket")
    versioned = {
        name: bucket
        for name, bucket in buckets.items()
        if bucket["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    }
    assert "data.EnfExportsBucket" in versioned
    for name in versioned:
        template, bucket = name.split(".")
        days = [
            rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            for rule in _bucket_rules(template, bucket)
            if "NoncurrentVersionExpiration" in rule and "Prefix" not in rule
        ]
        assert days, f"{name} keeps noncurrent versions forever"


def test_exported_keys_and_personal_details_files_go_when_their_retention_says() -> None:
    """Keys are kept 14 days (the cleanup job deletes their files then): a deleted file's
    noncurrent version lasts one more day, and a file the cleanup missed expires at 15 days.
    NCTS's personal-details files expire after PersonalDetailsFileRetentionDays (30)."""

    def noncurrent_days(rules: list[dict[str, Any]]) -> list[int]:
        return [
            r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if "Prefix" not in r
        ]

    enf = _bucket_rules("data", "EnfExportsBucket")
    assert noncurrent_days(enf) == [1]
    backstop = [r for r in enf if r.get("Prefix") == "exposures/"]
    assert [r["ExpirationInDays"] for r in backstop] == [15]

    details = _bucket_rules("data", "UserDetailsBucket")
    assert noncurrent_days(details) == [1]
    files = [r for r in details if r.get("Prefix") == "personal-details/"]
    assert [r["ExpirationInDays"] for r in files] == [{"Ref": "PersonalDetailsFileRetentionDays"}]
    parameter = cfn.load(TEMPLATES / "data.yaml")["Parameters"]["PersonalDetailsFileRetentionDays"]
    assert parameter["Default"] == 30


def test_ncts_reads_only_the_personal_details_files_from_its_own_account() -> None:
    """DESIGN §3.4: NCTS's account reads the export bucket through its bucket policy, and the
    SSE-KMS files through the key's policy (a cross-account principal needs both):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-walkthroughs-managing-access-example2.html
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
    """
    template = cfn.load(TEMPLATES / "data.yaml")
    assert template["Parameters"]["NctsAccountId"]["AllowedPattern"] == "^\\d{12}$"
    ncts = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${NctsAccountId}:root"}}
    policy = _resources("data")["UserDetailsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "UserDetailsBucket"}
    granted = [s for s in _statements(policy["PolicyDocument"]) if s.get("Principal") == ncts]
    assert {frozenset(_actions(s)) for s in granted} == {
        frozenset({"s3:GetObject"}),
        frozenset({"s3:ListBucket"}),
    }
    for statement in granted:
        assert statement["Effect"] == "Allow"
        if _actions(statement) == {"s3:GetObject"}:
            files = "${UserDetailsBucket.Arn}/personal-details/*"
            assert statement["Resource"] == {"Fn::Sub": files}
        else:
            assert statement["Resource"] == {"Fn::GetAtt": ["UserDetailsBucket", "Arn"]}
            assert statement["Condition"] == {"StringLike": {"s3:prefix": "personal-details/*"}}
    denied = [s for s in _statements(policy["PolicyDocument"]) if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denied)

    key_policy = _resources("data")["DataKey"]["Properties"]["KeyPolicy"]
    key_grants = [s for s in _statements(key_policy) if s.get("Principal") == ncts]
    assert len(key_grants) == 1
    assert _actions(key_grants[0]) == {"kms:Decrypt"}
    assert key_grants[0]["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}
    }


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_the_deployment_gives_every_stack_each_parameter_it_has_no_default_for(stage: str) -> None:
    """CloudFormation refuses a stack whose parameter has neither a value nor a default."""
    from tracerstack import deploy

    ctx = deploy.Context(stage=deploy.StageConfig.load(stage), dry_run=True, log=lambda _: None)
    for template in (*deploy.STACK_ORDER, "observability"):
        required = {
            name
            for name, spec in cfn.load(TEMPLATES / f"{template}.yaml").get("Parameters", {}).items()
            if "Default" not in spec
        }
        given = deploy._stack_parameters(template, ctx)
        assert required <= set(given), f"{template}: {sorted(required - set(given))}"


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_each_stage_names_the_ncts_account_and_a_log_retention_cloudwatch_accepts(
    stage: str,
) -> None:
    from tracerstack import deploy

    config = deploy.StageConfig.load(stage)
    retention = cfn.load(TEMPLATES / "database.yaml")["Parameters"]["LogRetentionDays"]
    assert config.log_retention_days in retention["AllowedValues"]
    assert re.fullmatch(r"\d{12}|REPLACE.*", config.ncts_account_id)
    if config.ncts_account_id.startswith("REPLACE"):
        assert "ncts_account_id" in deploy.unfilled_inputs(config)


def test_every_queue_that_parks_failed_work_raises_an_alarm() -> None:
    """Parked work (SQS dead letters, stream batches Lambda gave up on) waits for an operator:
    one message is worth an alarm. The stream's records are replayable for 24 hours only."""
    queues = {
        r["Properties"]["QueueName"]["Fn::Sub"]
        for r in _resources("messaging", "AWS::SQS::Queue").values()
    }
    parking = {q for q in queues if q.endswith(("-dlq", "-failures"))}
    assert "covidtracer-${Stage}-personal-details-stream-failures" in parking
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::Sub"]
        for alarm in _resources("observability", "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert parking <= alarmed


# --- the API web ACL, evaluated as AWS WAF evaluates it --------------------------------------
# Labels the managed rule groups add, for the requests below: the Core rule set labels any body
# over 8 KB with SizeRestrictions_Body (and blocks it unless told otherwise), which refused real
# diaries (CLIENTS.md: several thousand entries):
# https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html
CRS, BAD_INPUTS = "awswaf:managed:aws:core-rule-set:", "awswaf:managed:aws:known-bad-inputs:"
WAF_BODY_SIZE_RULE_BYTES = 8 * 1024


def _managed_labels(group: str, body: str) -> set[str]:
    labels = set()
    if group == "AWSManagedRulesCommonRuleSet":
        if len(body.encode()) > WAF_BODY_SIZE_RULE_BYTES:
            labels.add(CRS + "SizeRestrictions_Body")
        if "<script>" in body:
            labels.add(CRS + "CrossSiteScripting_Body")
    if group == "AWSManagedRulesKnownBadInputsRuleSet" and "${jndi:" in body:
        labels.add(BAD_INPUTS + "Log4JRCE_Body")
    return labels


def _matches(statement: dict[str, Any], path: str, labels: set[str]) -> bool:
    ((kind, spec),) = statement.items()
    if kind == "AndStatement":
        return all(_matches(s, path, labels) for s in spec["Statements"])
    if kind == "OrStatement":
        return any(_matches(s, path, labels) for s in spec["Statements"])
    if kind == "NotStatement":
        return not _matches(spec["Statement"], path, labels)
    if kind == "LabelMatchStatement":
        if spec["Scope"] == "NAMESPACE":
            return any(label.startswith(spec["Key"]) for label in labels)
        return spec["Key"] in labels
    if kind == "ByteMatchStatement":
        assert spec["FieldToMatch"] == {"UriPath": {}}
        assert spec["TextTransformations"] == [{"Priority": 0, "Type": "NONE"}]
        position, text = spec["PositionalConstraint"], spec["SearchString"]
        return {"ENDS_WITH": path.endswith, "EXACTLY": path.__eq__}[position](text)
    if kind == "RateBasedStatement":
        return False  # one request is never over the rate
    raise AssertionError(f"the test does not evaluate {kind}")


# What API Gateway answers when a managed rule group blocks with its default action.
GATEWAY_WAF_FILTERED = {"gateway response": "WAF_FILTERED"}


def _waf_answer(path: str, body: str) -> dict[str, Any] | None:
    """How the API web ACL blocks ``POST path`` (its rule's custom response, or API Gateway's
    WAF_FILTERED gateway response for a managed rule's block), or None if it allows it."""
    acl = _resources("edge")["ApiWebAcl"]["Properties"]
    assert acl["DefaultAction"] == {"Allow": {}}
    labels: set[str] = set()
    for rule in sorted(acl["Rules"], key=lambda r: r["Priority"]):
        statement = rule["Statement"]
        if "ManagedRuleGroupStatement" in statement:
            group = statement["ManagedRuleGroupStatement"]
            counted = {
                o["Name"].lower()
                for o in group.get("RuleActionOverrides", [])
                if o["ActionToUse"] == {"Count": {}}
            }
            matched = _managed_labels(group["Name"], body)
            labels |= matched  # a counted rule still labels the request
            # Label names are the rule names in another case (SizeRestrictions_BODY → _Body).
            blocking = {m for m in matched if m.rsplit(":", 1)[1].lower() not in counted}
            if blocking and rule["OverrideAction"] == {"None": {}}:
                return GATEWAY_WAF_FILTERED
        elif _matches(statement, path, labels):
            custom: dict[str, Any] = rule["Action"]["Block"]["CustomResponse"]
            return custom
    return None


def _diary(entries: int) -> str:
    locations = [
        {"gln": "9429300000000", "locationName": "Blue Stone Cafe", "note": "with Sam",
         "entryType": 0, "time": "2021-10-04T21:05:12.000Z"}
        for _ in range(entries)
    ]  # fmt: skip
    return json.dumps({"consentCode": "A1B2C3", "locations": locations})


def test_the_api_waf_lets_whole_diaries_and_key_uploads_through() -> None:
    """60 days of a heavy user's diary (30 places a day) and an upload of 30 keys with its
    Android attestation are well over 8 KB; API Gateway (10 MB) and the app bound them."""
    diary = _diary(60 * 30)
    assert len(diary) > 20 * WAF_BODY_SIZE_RULE_BYTES
    assert _waf_answer("/api/v2/user/location-history", diary) is None
    keys = [{"keyData": "k" * 24, "rollingStartNumber": 2700000, "rollingPeriod": 144}] * 30
    attestation = "j" * 7000  # a SafetyNet JWS carries its certificate chain
    upload = json.dumps({"exposures": keys, "deviceVerificationPayload": attestation})
    assert len(upload) > WAF_BODY_SIZE_RULE_BYTES
    assert _waf_answer("/api/exposures", upload) is None
    assert _waf_answer("/api/register", upload) is None


def _problem(response: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    bodies = _resources("edge")["ApiWebAcl"]["Properties"]["CustomResponseBodies"]
    body = bodies[response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    headers = {h["Name"]: h["Value"] for h in response.get("ResponseHeaders", [])}
    return response["ResponseCode"], json.loads(body["Content"]), headers


def test_the_api_waf_still_refuses_what_it_should_in_the_documented_error_shape() -> None:
    """Never the 429 without Retry-After API Gateway answered every WAF block with."""
    from covidtracer import errors
    from tracerstack.package import gateway_responses

    def shape(error: type[errors.DomainError]) -> dict[str, Any]:
        return {"type": error.type, "title": error.title, "status": error.status}

    oversize = _waf_answer("/api/user/auth/initiate", "x" * (WAF_BODY_SIZE_RULE_BYTES + 1))
    assert oversize is not None and oversize is not GATEWAY_WAF_FILTERED
    status, body, _ = _problem(oversize)
    assert (status, body) == (413, shape(errors.PayloadTooLarge))
    for path, body_text in [
        ("/api/v2/user/location-history", _diary(1).replace("with Sam", "<script>")),
        ("/api/v2/user/location-history", _diary(1000).replace("with Sam", "<script>")),
        ("/api/exposures", '{"token": "${jndi:ldap://x}"}'),
    ]:
        assert _waf_answer(path, body_text) is GATEWAY_WAF_FILTERED, path
    filtered = gateway_responses()["WAF_FILTERED"]
    assert filtered["statusCode"] == "403"
    assert json.loads(filtered["responseTemplates"]["application/json"]) == shape(errors.Forbidden)

    rules = _resources("edge")["ApiWebAcl"]["Properties"]["Rules"]
    (rate,) = [r for r in rules if "RateBasedStatement" in r["Statement"]]
    status, body, headers = _problem(rate["Action"]["Block"]["CustomResponse"])
    assert (status, body) == (429, shape(errors.TooManyRequests))
    # A rate-based rule counts over a 5-minute window (EvaluationWindowSec, default 300).
    window = rate["Statement"]["RateBasedStatement"].get("EvaluationWindowSec", 300)
    assert headers == {"Retry-After": str(window)}
    # Every rule of the ACL's own answers with a custom response.
    for rule in rules:
        if "Action" in rule:
            assert "CustomResponse" in rule["Action"]["Block"], rule["Name"]


def test_cloudfronts_waf_also_answers_a_rate_block_with_retry_after_and_stops_log4shell() -> None:
    from covidtracer import errors

    acl = _resources("waf-cloudfront")["WebAcl"]["Properties"]
    (rate,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    response = rate["Action"]["Block"]["CustomResponse"]
    body = json.loads(acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert response["ResponseCode"] == 429 == body["status"]
    assert body["type"] == errors.TooManyRequests.type
    assert response["ResponseHeaders"] == [{"Name": "Retry-After", "Value": "300"}]
    groups = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert "AWSManagedRulesKnownBadInputsRuleSet" in groups


def test_cloudfront_requires_tls_1_2_wherever_a_certificate_of_ours_allows_it() -> None:
    """With CloudFront's default *.cloudfront.net certificate "CloudFront automatically sets
    the security policy to TLSv1 regardless of the value that you set"; only a certificate of
    our own (ACM, us-east-1, with the stage's domain names) can require TLS 1.2:
    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ViewerCertificate.html"""
    from tracerstack import deploy

    template = cfn.load(TEMPLATES / "edge.yaml")
    assert template["Conditions"]["HasEdgeCertificate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EdgeCertificateArn"}, ""]}]
    }
    distributions = _resources("edge", "AWS::CloudFront::Distribution")
    assert len(distributions) == 2
    for name, distribution in distributions.items():
        config = distribution["Properties"]["DistributionConfig"]
        condition, own, default = config["ViewerCertificate"]["Fn::If"]
        assert condition == "HasEdgeCertificate"
        assert own["AcmCertificateArn"] == {"Ref": "EdgeCertificateArn"}
        assert own["SslSupportMethod"] == "sni-only"
        assert own["MinimumProtocolVersion"] == "TLSv1.2_2021", name
        assert default == {"CloudFrontDefaultCertificate": True}
        assert config["Aliases"]["Fn::If"][0] == "HasEdgeCertificate"
        assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    ctx = deploy.Context(stage=deploy.StageConfig.load("prod"), dry_run=True, log=lambda _: None)
    given = deploy._stack_parameters("edge", ctx)
    assert {"EdgeCertificateArn", "FeedAlias", "EnfFilesAlias"} <= set(given)


# --- disaster recovery (docs/operations.md §8) -----------------------------------------------
REPLICATED_BUCKETS = {"FeedBucket": "feed", "EnfExportsBucket": "enf-exports",
                      "UserDetailsBucket": "user-details"}  # fmt: skip


def _if_dr(value: dict[str, Any]) -> Any:
    """The DR branch of ``!If [HasDrRegion, <dr>, <without>]``."""
    condition, with_dr, _ = value["Fn::If"]
    assert condition == "HasDrRegion"
    return with_dr


def test_the_files_phones_and_ncts_read_are_replicated_to_the_dr_region_within_15_minutes() -> None:
    """S3 Replication Time Control replicates 99.99 % of objects within 15 minutes; deletions
    replicate too, so the 14-day key rule holds in the replicas:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html"""
    data, dr = _resources("data"), _resources("dr")
    replicas = {r["Properties"]["BucketName"]["Fn::Sub"] for r in dr.values()
                if r["Type"] == "AWS::S3::Bucket"}  # fmt: skip
    for bucket, kind in REPLICATED_BUCKETS.items():
        (rule,) = _if_dr(data[bucket]["Properties"]["ReplicationConfiguration"])["Rules"]
        replica = f"covidtracer-${{Stage}}-{kind}-replica-${{AWS::AccountId}}"
        assert replica in replicas, bucket
        destination = rule["Destination"]
        assert destination["Bucket"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{replica}"}
        assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
        assert destination["Metrics"]["Status"] == "Enabled"
        assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
        assert rule["Status"] == "Enabled"
    (details,) = _if_dr(data["UserDetailsBucket"]["Properties"]["ReplicationConfiguration"])[
        "Rules"
    ]
    assert details["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    dr_key = "arn:${AWS::Partition}:kms:${DrRegion}:${AWS::AccountId}:alias/covidtracer-${Stage}-dr"
    assert details["Destination"]["EncryptionConfiguration"] == {
        "ReplicaKmsKeyID": {"Fn::Sub": dr_key}
    }
    assert _resources("dr")["DrKeyAlias"]["Properties"]["AliasName"] == {
        "Fn::Sub": "alias/covidtracer-${Stage}-dr"
    }


def test_phones_keep_reading_the_feed_and_key_files_from_the_replicas_if_the_region_fails() -> None:
    """CloudFront origin failover: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/high_availability_origin_failover.html"""
    for name in ("FeedDistribution", "EnfFilesDistribution"):
        config = _resources("edge")[name]["Properties"]["DistributionConfig"]
        (group,) = _if_dr(config["OriginGroups"])["Items"]
        members = [m["OriginId"] for m in group["Members"]["Items"]]
        assert len(members) == 2 and members[1].endswith("-replica")
        assert {500, 502, 503, 504} <= set(group["FailoverCriteria"]["StatusCodes"]["Items"])
        assert _if_dr(config["DefaultCacheBehavior"]["TargetOriginId"]) == group["Id"]
        replica = _if_dr(config["Origins"][1])
        assert replica["Id"] == members[1]
        assert ".s3.${DrRegion}.amazonaws.com" in replica["DomainName"]["Fn::Sub"]


def test_every_backup_is_copied_to_the_dr_region() -> None:
    """AWS Backup copies each recovery point to the DR region's vault:
    https://docs.aws.amazon.com/aws-backup/latest/devguide/cross-region-backup.html"""
    backup = _resources("backup")
    (plan,) = [r for r in backup.values() if r["Type"] == "AWS::Backup::BackupPlan"]
    rules = {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    vault = _resources("dr")["DrBackupVault"]["Properties"]["BackupVaultName"]["Fn::Sub"]
    dr_vault = (
        f"arn:${{AWS::Partition}}:backup:${{DrRegion}}:${{AWS::AccountId}}:backup-vault:{vault}"
    )
    assert rules["hourly"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert rules["daily"]["Lifecycle"]["DeleteAfterDays"] == 35
    for rule in rules.values():
        (copy,) = _if_dr(rule["CopyActions"])
        assert copy["DestinationBackupVaultArn"] == {"Fn::Sub": dr_vault}
        assert copy["Lifecycle"] == rule["Lifecycle"]
    (selection,) = [r for r in backup.values() if r["Type"] == "AWS::Backup::BackupSelection"]
    protected = json.dumps(selection["Properties"]["BackupSelection"]["Resources"])
    for export in (
        "UsersTable",
        "PersonalDetailsTable",
        "ExposureEventsTable",
        "ClusterIdentifier",
    ):
        assert f"covidtracer-${{Stage}}-{export}" in protected


def test_the_export_signing_key_has_a_replica_in_the_dr_region_phones_already_trust() -> None:
    """A multi-Region replica shares the key material (and so the public key Apple and Google
    hold): https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html"""
    primary = _resources("data")["ExportSigningKey"]["Properties"]
    assert primary["MultiRegion"] is True
    (replica,) = _resources("dr-signing", "AWS::KMS::ReplicaKey").values()
    assert replica["Properties"]["PrimaryKeyArn"] == {"Ref": "ExportSigningKeyArn"}
    outputs = cfn.load(TEMPLATES / "data.yaml")["Outputs"]
    assert outputs["ExportSigningKeyArn"]["Value"] == {"Fn::GetAtt": ["ExportSigningKey", "Arn"]}


def test_failed_backups_copies_and_replication_reach_the_alarm_topic() -> None:
    """AWS Backup sends job state changes to EventBridge; EventBridge may publish to an encrypted
    topic only if the key lets events.amazonaws.com use it (sns-key-management, above)."""
    observability = _resources("observability")
    rule = observability["FailedBackupJobsRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.backup"]
    assert set(rule["EventPattern"]["detail-type"]) == {
        "Backup Job State Change",
        "Copy Job State Change",
    }
    assert "FAILED" in rule["EventPattern"]["detail"]["state"]
    assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": "AlarmTopic"}]
    key = observability["AlarmTopicKey"]["Properties"]["KeyPolicy"]
    events = [s for s in _statements(key) if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert len(events) == 1 and _actions(events[0]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    topic_policy = observability["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
    assert any(
        s["Principal"] == {"Service": "events.amazonaws.com"} for s in _statements(topic_policy)
    )
    replication = observability["ReplicationFailuresAlarm"]["Properties"]
    watched = {
        d["Value"]["Fn::Sub"]
        for m in replication["Metrics"]
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "SourceBucket"
    }
    assert watched == {
        f"covidtracer-${{Stage}}-{kind}-${{AWS::AccountId}}" for kind in REPLICATED_BUCKETS.values()
    }


def test_every_secret_has_a_replica_in_the_dr_region() -> None:
    """Secrets Manager replicates a secret's value to other regions:
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/create-manage-multi-region-secrets.html
    """
    secrets = _all_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 8  # the ENF apps secret (Google contract) is the eighth
    for name, secret in secrets.items():
        (replica,) = _if_dr(secret["Properties"]["ReplicaRegions"])
        assert replica["Region"] == {"Ref": "DrRegion"}, name
    (db,) = _if_dr(_resources("database")["DatabaseSecret"]["Properties"]["ReplicaRegions"])
    assert db["KmsKeyId"] == {"Fn::Sub": "alias/covidtracer-${Stage}-dr"}


def test_the_disaster_recovery_section_states_what_the_templates_do() -> None:
    """docs/operations.md §8 promises only what the templates build, with their numbers."""
    from tracerstack import REPO_ROOT, deploy

    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    section = doc[doc.index("## 8. Disaster recovery") : doc.index("## 9.")]
    plan = _resources("backup")["BackupPlan"]["Properties"]["BackupPlan"]["BackupPlanRule"]
    for rule in plan:
        days = rule["Lifecycle"]["DeleteAfterDays"]
        assert f"{rule['RuleName']} (kept {days} days)" in section
    hourly = next(r for r in plan if r["RuleName"] == "hourly")
    assert hourly["StartWindowMinutes"] == 60 and hourly["CompletionWindowMinutes"] == 120
    assert "up to about 3 hours" in section
    rtc = _if_dr(_resources("data")["FeedBucket"]["Properties"]["ReplicationConfiguration"])
    minutes = rtc["Rules"][0]["Destination"]["ReplicationTime"]["Time"]["Minutes"]
    assert f"| {minutes} minutes (RTC" in section
    assert f"`{deploy.StageConfig.load('prod').dr_region}`" in section
    for promise in ("RPO 5 minutes, RTO 4 hours", "<stage>-dr.json", "repoint DNS"):
        assert promise not in section  # the promises nothing backed (issue 18 item 14)


@pytest.mark.parametrize(
    ("module", "constant"),
    [
        ("covidtracer.enfkeys.service", "GUESS_METRIC"),
        ("covidtracer.diary.service", "GUESS_METRIC"),
        ("covidtracer.signin.service", "CODES_METRIC"),
    ],
)
def test_every_signal_a_limit_reports_has_an_alarm(module: str, constant: str) -> None:
    """Issue 19: the limits in all refuse nobody; they are metrics an operator is alarmed
    on. The metric the code writes and the one the alarm watches must be the same."""
    import importlib

    name = getattr(importlib.import_module(module), constant)
    resources = cfn.load(TEMPLATES / "observability.yaml")["Resources"]
    watching = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == name
    ]  # fmt: skip
    assert len(watching) == 1, name
    assert watching[0]["Namespace"] == "CovidTracer"
    assert watching[0]["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "Stage"}}]
