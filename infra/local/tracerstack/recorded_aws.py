"""A recorded AWS account for rehearsing ``make deploy-all`` with no account: ``RecordedAws``.

botocore offers every call to its ``before-call`` handlers before it signs or sends anything,
and sends nothing when one of them answers: the hook botocore's own ``Stubber`` uses.
``RecordedAws.install`` registers such a handler on a boto3 session and answers the calls a
deployment makes the way the services would, keeping their state in the object, not in the
session: two releases run from two fresh sessions and two empty ``deploy.Context``s (two fresh
runners) meet the same stacks, as they would in an account.

CloudFormation is answered as its documentation says it behaves:

- a stack is made by a CREATE change set (it waits in ``REVIEW_IN_PROGRESS`` until executed)
  and changed by an UPDATE one; each needs the stack to be absent or present, respectively;
- parameters are resolved as CloudFormation resolves them: a value given, else
  ``UsePreviousValue`` (an update only), else the template's ``Default``; a parameter with none
  of them, or one the template does not declare, refuses the change set; ``AllowedValues``,
  ``AllowedPattern`` and ``MinValue``/``MaxValue`` are checked
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html);
- a ``TemplateBody`` over 51,200 bytes is refused (a larger template must come from S3:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html);
- a change set that changes nothing fails with CloudFormation's own reason;
- conditions decide which resources exist, and ``Fn::If`` which properties they have;
- exports are unique in a region, an ``Fn::ImportValue`` needs the export to exist, and an
  update that would remove or change an export another stack imports rolls back
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-importvalue.html).

S3 keeps what is put (single and multipart uploads) in buckets that stacks made; Lambda
``Invoke`` answers for a function a stack made. Anything else is an error: a deployment that
starts calling a new API fails its rehearsal until this module answers it.

After every executed change set the account's stacks are recorded in ``history``: what the
account looked like between any two steps of a release.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracerstack import cfn

ACCOUNT = "123456789012"
TEMPLATE_BODY_LIMIT = 51_200
NO_CHANGES = (
    "The submitted information didn't contain changes. "
    "Submit different information to create a change set."
)
_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
# The statuses of a stack whose resources exist (a failed creation's ROLLBACK_COMPLETE and a
# change set's REVIEW_IN_PROGRESS have none).
_LIVE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


class AwsError(Exception):
    """An error answer: botocore raises it as the ``ClientError`` of ``code``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


# ---------------------------------------------------------------------------- templates


def _physical_id(stack: str, logical_id: str) -> str:
    """A resource's name: lower case, dashes, at most 63 characters (a valid bucket name)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{stack}-{logical_id}".lower())[:63]


class _Names(Mapping[str, Any]):
    """A stack's resources by logical id: ``Ref`` gives a name, ``GetAtt`` an ARN. A SAM
    resource's generated ones (``UsageReport.Alias``) count as its own."""

    def __init__(self, stack: str, region: str, attribute: bool, logical_ids: set[str]) -> None:
        self.stack, self.region, self.attribute = stack, region, attribute
        self.logical_ids = logical_ids

    def __getitem__(self, logical_id: str) -> Any:
        if logical_id not in self:
            raise KeyError(logical_id)
        name = _physical_id(self.stack, logical_id)
        if not self.attribute:
            return name
        arn = f"arn:aws:recorded:{self.region}:{ACCOUNT}:{name}"
        return _Attributes(arn)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.split(".")[0] in self.logical_ids

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Attributes(dict[str, str]):
    def __init__(self, arn: str) -> None:
        super().__init__()
        self.arn = arn

    def __missing__(self, attribute: str) -> str:
        return self.arn if attribute == "Arn" else f"{self.arn}/{attribute}"


class _Resolver(cfn.Resolver):
    """``cfn.Resolver`` with the condition functions the bootstrap does not need."""

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::And":
            return all(self(item) for item in arg)
        if key == "Fn::Or":
            return any(self(item) for item in arg)
        if key == "Fn::Split":
            return str(self(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self(arg[1])[int(self(arg[0]))]
        return super()._function(key, arg)


@dataclass
class Deployed:
    """One stack's template with its parameters: what CloudFormation made of them."""

    name: str
    region: str
    template: dict[str, Any]
    parameters: dict[str, str]
    exports: Mapping[str, str]

    def resolver(self) -> _Resolver:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{self.name}",
        }
        logical_ids = set(self.template["Resources"])
        return _Resolver(
            {**pseudo, **self.parameters},
            _Names(self.name, self.region, attribute=False, logical_ids=logical_ids),
            _Names(self.name, self.region, attribute=True, logical_ids=logical_ids),
            self.exports,
            self.template.get("Conditions", {}),
        )

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources that exist: those whose Condition holds."""
        resolver = self.resolver()
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if "Condition" not in resource or resolver.condition(resource["Condition"])
        }

    def property(self, logical_id: str, name: str) -> Any:
        """A property of an existing resource, resolved (``None`` when it is left out)."""
        resource = self.resources.get(logical_id)
        if resource is None:
            return None
        value = self.resolver()(resource.get("Properties", {}).get(name))
        return None if value is cfn.NO_VALUE else value

    def outputs(self) -> dict[str, tuple[str, str | None]]:
        """Each output's value and export name."""
        resolver = self.resolver()
        outputs = {}
        for key, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            export = resolver(output["Export"]["Name"]) if "Export" in output else None
            outputs[key] = (str(resolver(output["Value"])), export)
        return outputs

    def imports(self) -> set[str]:
        """The export names the existing resources import."""
        resolver = self.resolver()
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                if set(value) == {"Fn::ImportValue"}:
                    found.add(str(resolver(value["Fn::ImportValue"])))
                    return
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.resources)
        return found


# ---------------------------------------------------------------------------- the account


@dataclass(frozen=True)
class Change:
    """One executed change set: the stack it changed and every stack just after it."""

    stack: str
    stacks: dict[str, Deployed]


@dataclass
class _Stack:
    deployed: Deployed
    status: str
    tags: list[dict[str, str]] = field(default_factory=list)
    outputs: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def stack_id(self) -> str:
        region, name = self.deployed.region, self.deployed.name
        return f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/recorded"


@dataclass
class _ChangeSet:
    change_set_id: str
    name: str
    stack: _Stack
    change_type: str
    proposed: Deployed
    tags: list[dict[str, str]]
    status: str = "CREATE_COMPLETE"
    reason: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)


class RecordedAws:
    """The account: its stacks, change sets, objects and invocations, and ``history``."""

    def __init__(self) -> None:
        self.stacks: dict[tuple[str, str], _Stack] = {}
        self.change_sets: dict[str, _ChangeSet] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.invocations: list[str] = []
        # One entry for each executed change set: the account's stacks just after it.
        self.history: list[Change] = []
        self._uploads: dict[str, dict[int, bytes]] = {}
        self._lock = threading.Lock()  # S3 uploads parts from several threads

    def install(self, session: Any) -> Any:
        """Answer every call of clients made from ``session`` (a ``boto3.Session``)."""
        session.events.register("before-parameter-build", self._keep_parameters)
        session.events.register("before-call", self._answer)
        return session

    def stack(self, name: str) -> Deployed | None:
        """The stack of that name as it stands now (any region)."""
        for (_, stack_name), stack in self.stacks.items():
            if stack_name == name and stack.status in _LIVE:
                return stack.deployed
        return None

    # -- botocore's hooks

    @staticmethod
    def _keep_parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # The call's own parameters: before-call sees them already serialised.
        context["recorded_aws_parameters"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, Any]:
        from botocore import xform_name
        from botocore.awsrequest import AWSResponse

        service = model.service_model.service_name
        handler = getattr(self, f"_{service}_{xform_name(model.name)}", None)
        if handler is None:
            raise NotImplementedError(f"the recorded account answers no {service} {model.name}")
        try:
            with self._lock:
                parsed = handler(context["client_region"], context["recorded_aws_parameters"])
        except cfn.TemplateError as error:
            return self._error(AwsError("ValidationError", f"Template format error: {error}"))
        except AwsError as error:
            return self._error(error)
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return AWSResponse(None, 200, {}, None), parsed

    @staticmethod
    def _error(error: AwsError) -> tuple[Any, Any]:
        from botocore.awsrequest import AWSResponse

        body = {"Error": {"Code": error.code, "Message": error.message}}
        metadata = {"ResponseMetadata": {"HTTPStatusCode": error.status}}
        return AWSResponse(None, error.status, {}, None), body | metadata

    # -- CloudFormation

    def _cloudformation_describe_stacks(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        stack = self.stacks.get((region, p["StackName"]))
        if stack is None:
            raise AwsError("ValidationError", f"Stack with id {p['StackName']} does not exist")
        described = {
            "StackName": stack.deployed.name,
            "StackId": stack.stack_id,
            "StackStatus": stack.status,
            "Parameters": [
                {"ParameterKey": k, "ParameterValue": v}
                for k, v in stack.deployed.parameters.items()
            ],
            "Tags": stack.tags,
            "Outputs": [
                {"OutputKey": k, "OutputValue": v} | ({"ExportName": e} if e else {})
                for k, (v, e) in stack.outputs.items()
            ],
        }
        return {"Stacks": [described]}

    def _cloudformation_create_change_set(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name, change_type = p["StackName"], p.get("ChangeSetType", "UPDATE")
        stack = self.stacks.get((region, name))
        exists = stack is not None and stack.status != "REVIEW_IN_PROGRESS"
        if change_type == "CREATE" and exists:
            raise AwsError(
                "ValidationError",
                f"Stack [{name}] already exists and cannot be created again with the "
                f"changeSet [{p['ChangeSetName']}].",
            )
        if change_type == "UPDATE" and not exists:
            raise AwsError("ValidationError", f"Stack [{name}] does not exist")
        template = self._template(p)
        previous = stack.deployed.parameters if exists and stack else None
        parameters = _parameters(template, p.get("Parameters", []), previous)
        if stack is None:
            empty = Deployed(name, region, {"Resources": {}}, {}, {})
            stack = self.stacks[(region, name)] = _Stack(empty, "REVIEW_IN_PROGRESS")
        exports = self._exports(region)
        proposed = Deployed(name, region, template, parameters, exports)
        missing = sorted(proposed.imports() - set(exports))
        if missing:
            raise AwsError("ValidationError", f"No export named {missing[0]} found")
        change_set = _ChangeSet(
            f"arn:aws:cloudformation:{region}:{ACCOUNT}:changeSet/{p['ChangeSetName']}/"
            f"{len(self.change_sets)}",
            p["ChangeSetName"],
            stack,
            change_type,
            proposed,
            list(p.get("Tags", [])),
        )
        change_set.changes = _changes(stack, proposed, change_set.tags, exists)
        if exists and not change_set.changes:
            change_set.status, change_set.reason = "FAILED", NO_CHANGES
        self.change_sets[change_set.change_set_id] = change_set
        return {"Id": change_set.change_set_id, "StackId": stack.stack_id}

    def _change_set(self, p: dict[str, Any]) -> _ChangeSet:
        change_set = self.change_sets.get(p["ChangeSetName"])
        if change_set is None:
            raise AwsError("ChangeSetNotFound", f"ChangeSet [{p['ChangeSetName']}] does not exist")
        return change_set

    def _cloudformation_describe_change_set(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        change_set = self._change_set(p)
        return {
            "ChangeSetId": change_set.change_set_id,
            "ChangeSetName": change_set.name,
            "StackName": change_set.stack.deployed.name,
            "Status": change_set.status,
            "StatusReason": change_set.reason,
            "ExecutionStatus": "AVAILABLE" if change_set.status != "FAILED" else "UNAVAILABLE",
            "Changes": change_set.changes,
        }

    def _cloudformation_delete_change_set(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        del self.change_sets[self._change_set(p).change_set_id]
        return {}

    def _cloudformation_execute_change_set(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        change_set = self._change_set(p)
        if change_set.status != "CREATE_COMPLETE":
            raise AwsError("InvalidChangeSetStatus", f"ChangeSet is in {change_set.status}")
        stack, proposed = change_set.stack, change_set.proposed
        outputs = proposed.outputs()
        if self._export_conflict(region, stack, outputs):
            # The update fails and CloudFormation puts the stack back as it was.
            stack.status = (
                "ROLLBACK_COMPLETE"
                if change_set.change_type == "CREATE"
                else "UPDATE_ROLLBACK_COMPLETE"
            )
        else:
            stack.deployed, stack.outputs, stack.tags = proposed, outputs, change_set.tags
            stack.status = f"{change_set.change_type}_COMPLETE"
            live = {s.deployed.name: s.deployed for s in self.stacks.values() if s.status in _LIVE}
            self.history.append(Change(proposed.name, live))
        # Executing a change set deletes the stack's other change sets.
        for key in [k for k, c in self.change_sets.items() if c.stack is stack]:
            del self.change_sets[key]
        return {}

    def _cloudformation_delete_stack(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        stack = self.stacks.get((region, p["StackName"]))
        if stack is not None:
            importers = self._importers(region, stack, {e for _, e in stack.outputs.values() if e})
            if importers:
                raise AwsError("ValidationError", f"Export in use by {', '.join(importers)}")
            del self.stacks[(region, p["StackName"])]
        return {}

    def _template(self, p: dict[str, Any]) -> dict[str, Any]:
        if "TemplateBody" in p:
            body: str = p["TemplateBody"]
            if len(body.encode()) > TEMPLATE_BODY_LIMIT:
                raise AwsError(
                    "ValidationError",
                    "1 validation error detected: Value at 'templateBody' failed to satisfy "
                    "constraint: Member must have length less than or equal to "
                    f"{TEMPLATE_BODY_LIMIT}",
                )
            return cfn.parse(body)
        match = re.fullmatch(r"https://([^.]+)\.s3\.[^/]+\.amazonaws\.com/(.+)", p["TemplateURL"])
        if match is None or (match[1], match[2]) not in self.objects:
            raise AwsError(
                "ValidationError", f"TemplateURL must reach an object: {p['TemplateURL']}"
            )
        return cfn.parse(self.objects[(match[1], match[2])].decode())

    def _exports(self, region: str) -> dict[str, str]:
        return {
            export: value
            for (stack_region, _), stack in self.stacks.items()
            if stack_region == region
            for value, export in stack.outputs.values()
            if export
        }

    def _importers(self, region: str, exporter: _Stack, names: set[str]) -> list[str]:
        return sorted(
            stack.deployed.name
            for (stack_region, _), stack in self.stacks.items()
            if stack_region == region and stack is not exporter and stack.deployed.imports() & names
        )

    def _export_conflict(
        self, region: str, stack: _Stack, outputs: Mapping[str, tuple[str, str | None]]
    ) -> bool:
        new = {export: value for value, export in outputs.values() if export}
        old = {export: value for value, export in stack.outputs.values() if export}
        others = {
            export
            for (stack_region, _), other in self.stacks.items()
            if stack_region == region and other is not stack
            for _, export in other.outputs.values()
            if export
        }
        changed = {name for name, value in old.items() if new.get(name) != value}
        return bool(set(new) & others) or bool(self._importers(region, stack, changed))

    # -- S3

    def _bucket(self, bucket: str) -> None:
        for stack in self.stacks.values():
            for logical_id, resource in stack.deployed.resources.items():
                if resource["Type"] == "AWS::S3::Bucket" and bucket == _physical_id(
                    stack.deployed.name, logical_id
                ):
                    return
        raise AwsError("NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404)

    def _s3_put_object(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        self._bucket(p["Bucket"])
        data = _read(p.get("Body", b""))
        self.objects[(p["Bucket"], p["Key"])] = data
        return {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}  # noqa: S324 - S3's ETag is MD5

    def _s3_create_multipart_upload(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        self._bucket(p["Bucket"])
        upload_id = f"upload-{len(self._uploads)}"
        self._uploads[upload_id] = {}
        return {"Bucket": p["Bucket"], "Key": p["Key"], "UploadId": upload_id}

    def _s3_upload_part(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        data = _read(p["Body"])
        self._uploads[p["UploadId"]][p["PartNumber"]] = data
        return {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}  # noqa: S324

    def _s3_complete_multipart_upload(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        parts = self._uploads.pop(p["UploadId"])
        self.objects[(p["Bucket"], p["Key"])] = b"".join(parts[n] for n in sorted(parts))
        return {"Bucket": p["Bucket"], "Key": p["Key"], "ETag": f'"{p["UploadId"]}"'}

    def _s3_abort_multipart_upload(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        self._uploads.pop(p["UploadId"], None)
        return {}

    # -- Lambda

    def _lambda_invoke(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        from botocore.response import StreamingBody

        function = p["FunctionName"].split(":")[0]
        for (stack_region, _), stack in self.stacks.items():
            for logical_id, resource in stack.deployed.resources.items():
                if (
                    stack_region == region
                    and resource["Type"] in _FUNCTION_TYPES
                    and stack.deployed.property(logical_id, "FunctionName") == function
                ):
                    self.invocations.append(p["FunctionName"])
                    payload = json.dumps({"ok": True}).encode()
                    return {
                        "StatusCode": 200,
                        "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
                    }
        raise AwsError("ResourceNotFoundException", f"Function not found: {function}", 404)


def _read(body: Any) -> bytes:
    return body if isinstance(body, bytes) else bytes(body.read())


def _parameters(
    template: Mapping[str, Any],
    given: list[dict[str, Any]],
    previous: Mapping[str, str] | None,
) -> dict[str, str]:
    """The stack's parameter values, as CloudFormation resolves and checks them."""
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = sorted(g["ParameterKey"] for g in given if g["ParameterKey"] not in declared)
    if unknown:
        raise AwsError(
            "ValidationError", f"Parameters: [{', '.join(unknown)}] do not exist in the template"
        )
    values = {g["ParameterKey"]: g for g in given}
    resolved: dict[str, str] = {}
    for name, spec in declared.items():
        entry = values.get(name, {})
        if entry.get("UsePreviousValue"):
            if previous is None or name not in previous:
                raise AwsError(
                    "ValidationError",
                    f"Invalid input for parameter key {name}. Cannot specify usePreviousValue "
                    "as true for a parameter key not in the previous template",
                )
            resolved[name] = previous[name]
        elif "ParameterValue" in entry:
            resolved[name] = str(entry["ParameterValue"])
        elif "Default" in spec:
            resolved[name] = str(spec["Default"])
    missing = sorted(set(declared) - set(resolved))
    if missing:
        raise AwsError("ValidationError", f"Parameters: [{', '.join(missing)}] must have values")
    for name, value in resolved.items():
        _check_parameter(name, declared[name], value)
    return resolved


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        raise AwsError("ValidationError", f"Parameter '{name}' must be one of AllowedValues")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise AwsError("ValidationError", f"Parameter '{name}' must match pattern {pattern}")
    if spec.get("Type") == "Number":
        number = float(value)
        if number < float(spec.get("MinValue", number)) or number > float(
            spec.get("MaxValue", number)
        ):
            raise AwsError("ValidationError", f"Parameter '{name}' is out of its bounds")


def _changes(
    stack: _Stack, proposed: Deployed, tags: list[dict[str, str]], exists: bool
) -> list[dict[str, Any]]:
    """The change set's resource changes: added, removed, and modified definitions."""
    before = stack.deployed.resources if exists else {}
    after = proposed.resources
    changed = {
        name
        for name in set(proposed.parameters) | set(stack.deployed.parameters)
        if proposed.parameters.get(name) != stack.deployed.parameters.get(name)
    }
    # A condition over a changed parameter changes whatever names the condition.
    conditions = proposed.template.get("Conditions", {})
    while grown := {c for c, e in conditions.items() if c not in changed and _mentions(e, changed)}:
        changed |= grown
    retagged = exists and tags != stack.tags

    def modified(logical_id: str) -> bool:
        definition = after[logical_id]
        return (
            retagged
            or _mentions(definition, changed)
            or json.dumps(definition, sort_keys=True)
            != json.dumps(before[logical_id], sort_keys=True)
        )

    actions = [("Add", name, after[name]) for name in after if name not in before]
    actions += [("Remove", name, before[name]) for name in before if name not in after]
    actions += [
        ("Modify", name, after[name]) for name in after if name in before and modified(name)
    ]
    if exists and not actions and changed:
        # A parameter no resource uses still changes the stack (its outputs may use it).
        actions = [("Modify", name, after[name]) for name in after]
    return [
        {
            "Type": "Resource",
            "ResourceChange": {
                "Action": action,
                "LogicalResourceId": name,
                "ResourceType": resource["Type"],
            },
        }
        for action, name, resource in sorted(actions, key=lambda a: a[1])
    ]


def _mentions(definition: Any, names: set[str]) -> bool:
    """Whether a definition refers to any of ``names`` (Ref, Sub, If, Condition)."""
    text = json.dumps(definition)
    return any(re.search(rf'"{re.escape(n)}"|\$\{{{re.escape(n)}\}}', text) for n in names)
