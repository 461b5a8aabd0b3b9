"""Each service's execution role in the local stack, built from its packaged statements.

The policy is the one ``make package`` writes into ``build/<service>/template.json``
(``tracerstack.package.role_policy``, the same function), with its ``Fn::Sub`` references
resolved the way CloudFormation would resolve them on deployment: pseudo parameters to the
local account and region, ``Stage`` and ``SesRegion`` to the local stage's, and each stack
output parameter to the local stack's output. An output the local stack has no resource for
(the Aurora secret and key: the local stack uses PostgreSQL directly) resolves to an ARN that
names no resource, so its statements allow nothing here, as they would allow nothing else in
AWS.

The role is made through IAM's API and its credentials come from STS ``AssumeRole``, as
Lambda assumes a function's execution role; the gate (``tracerstack.iam.gate``) then
authorizes every request signed with them.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tracerstack import cfn
from tracerstack.bootstrap import ACCOUNT_ID, Bootstrap

# Lambda's trust policy, as the packaged DefaultRole has it.
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# The longest session a role allows (MaxSessionDuration, 12 h): the local stack runs for
# days, and the gate, like moto, does not expire sessions.
SESSION_SECONDS = 43_200


def resolved_policy(service: str, boot: Bootstrap, stage: str) -> dict[str, Any]:
    """``service``'s packaged role policy with every reference resolved to ``boot``'s ARNs.

    ``stage`` is the ``Stage`` parameter as the service sees it (``STAGE``).
    """
    from tracerstack.package import role_policy

    document, outputs = role_policy(service)
    parameters = {
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Region": boot.region,
        "AWS::Partition": "aws",
        "Stage": stage,
        "SesRegion": boot.ses_region,
    }
    for name in outputs:
        parameters[name] = boot.outputs.get(name) or _absent(boot, name)
    resolved: dict[str, Any] = cfn.Resolver(parameters, {}, {}, {})(document)
    return resolved


def _absent(boot: Bootstrap, output: str) -> str:
    return f"arn:aws:local:{boot.region}:{ACCOUNT_ID}:not-in-the-local-stack/{output}"


def role_name(service: str, boot: Bootstrap) -> str:
    return f"covidtracer-{boot.stage}-{service}"


_made: dict[tuple[str, str, str, str], dict[str, str]] = {}
_lock = threading.Lock()


def credentials(boot: Bootstrap, service: str, stage: str) -> dict[str, str]:
    """Environment variables with credentials of ``service``'s role in ``boot``'s stack,
    made once per stack (the role, its policy, a session)."""
    key = (boot.endpoint_url, boot.stage, service, stage)
    with _lock:
        if key not in _made:
            _made[key] = _assume(boot, service, stage)
        return dict(_made[key])


def _assume(boot: Bootstrap, service: str, stage: str) -> dict[str, str]:
    return assume_role(boot, role_name(service, boot), resolved_policy(service, boot, stage))


def assume_role(boot: Bootstrap, name: str, policy: dict[str, Any]) -> dict[str, str]:
    """Credentials (environment variables) of a new role ``name`` whose only inline policy
    is ``policy``, made and assumed through IAM's and STS's APIs as the administrator."""
    iam = boot.client("iam")
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
        MaxSessionDuration=SESSION_SECONDS,
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
    session = boot.client("sts").assume_role(
        RoleArn=arn, RoleSessionName=name, DurationSeconds=SESSION_SECONDS
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
        "AWS_SESSION_TOKEN": session["SessionToken"],
    }
