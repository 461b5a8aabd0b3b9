"""IAM in front of moto: a service's requests are authorized under its role, as AWS would.

moto authenticates requests from its own IAM users and STS sessions when
``INITIAL_NO_AUTH_ACTION_COUNT`` is set, but its authorization only compares actions: every
service but S3, SQS and IAM itself is checked against resource ``*``, so a statement scoped
to a table's ARN never matches; it collects no condition keys from a request, so a
``Condition`` never narrows a statement; and a condition it does evaluate and finds false
turns an ``Allow`` into an explicit deny (``moto/iam/access_control.py``, 5.2). This gate
keeps moto's identities (roles made with ``CreateRole``/``PutRolePolicy``, credentials from
``AssumeRole``) and decides with the resources and condition keys AWS authorizes
(``tracerstack.iam.requests``, ``tracerstack.iam.policy``):

- a request signed with the administrator's key (``testing``: the bootstrap, the tests'
  set-up, the stand-ins) passes, as an account administrator's would;
- a request signed with an STS session's key must carry the session's token and a valid
  SigV4 signature, and each authorization it needs must be allowed by the role's policies;
- any other key is refused, as AWS refuses a key it does not know.

A refusal answers in the service's own error shape (``AccessDeniedException``,
``AccessDenied`` …) and is recorded in ``denials`` (served at ``/_tracerstack/iam/denials``)
and in the server's log. S3 answers a ``GetObject``/``HeadObject`` of a missing key with
403 rather than 404 when the caller may not ``s3:ListBucket`` the bucket
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"), and so
does the gate.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from tracerstack.bootstrap import ACCOUNT_ID
from tracerstack.environment import LOCAL_CREDENTIALS
from tracerstack.iam import policy
from tracerstack.iam.requests import ApiRequest, Unmapped, authorizations, operation_name

ADMIN_ACCESS_KEYS = frozenset({LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]})
DENIALS_PATH = "/_tracerstack/iam/denials"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Denial:
    """One request IAM refused: who, what, on which resource, and why."""

    principal: str
    action: str
    resource: str
    reason: str
    at: float


@dataclass(frozen=True)
class Session:
    arn: str
    secret_key: str
    token: str
    policies: list[dict[str, Any]]


class IamGate:
    """WSGI middleware enforcing identity-based policies on STS sessions' requests."""

    def __init__(self, app: WsgiApp, account: str = ACCOUNT_ID) -> None:
        self._app = app
        self._account = account
        self._lock = threading.Lock()
        self.denials: list[Denial] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == DENIALS_PATH:
            return self._serve_denials(environ, start_response)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return self._app(environ, start_response)  # unsigned: moto-api, anonymous reads
        credential = _field(authorization, "Credential").split("/")
        access_key, region, service = credential[0], credential[2], credential[3]
        if access_key in ADMIN_ACCESS_KEYS:
            return self._app(environ, start_response)
        body = _read_body(environ)
        request = ApiRequest(
            method=environ["REQUEST_METHOD"],
            target=_raw_target(environ),
            headers=_headers(environ),
            body=body,
            service=service,
            region=region,
            account=self._account,
        )
        session = _session(self._account, access_key)
        refusal = self._refusal(request, session, access_key, authorization)
        if refusal is not None:
            return refusal(start_response)
        assert session is not None, "a request without a session is refused"
        if _reads_an_object(request):
            return self._missing_object_as_403(request, session, environ, start_response)
        return self._app(environ, start_response)

    # ------------------------------------------------------------------ decisions

    def _refusal(
        self, request: ApiRequest, session: Session | None, access_key: str, authorization: str
    ) -> Any:
        if session is None or request.headers.get("x-amz-security-token") != session.token:
            return _error(
                request, "invalid-key", "The security token included in the request is invalid."
            )
        if not _signature_matches(request, access_key, session, authorization):
            return _error(
                request,
                "signature",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            needed = authorizations(request, _MotoResources(self._account))
        except Unmapped as unmapped:
            return self._deny(
                request,
                session,
                policy.Request(str(unmapped), "?"),
                f"tracerstack.iam.requests does not know what IAM needs for {unmapped}: "
                "add the operation there (with the AWS documentation it follows)",
            )
        for check in needed:
            try:
                decision = policy.decide(session.policies, check)
            except policy.PolicyError as unjudged:
                return self._deny(request, session, check, f"(not judged locally: {unjudged})")
            if decision is not policy.Decision.ALLOW:
                return self._deny(request, session, check, _because(decision, check.action))
        return None

    def _deny(
        self, request: ApiRequest, session: Session, check: policy.Request, reason: str
    ) -> Any:
        denial = Denial(session.arn, check.action, check.resource, reason, time.time())
        with self._lock:
            self.denials.append(denial)
        message = (
            f"User: {session.arn} is not authorized to perform: {check.action} "
            f"on resource: {check.resource} {reason}"
        )
        print(f"IAM denied {operation_name(request)}: {message}", flush=True)
        return _error(request, "denied", message)

    @staticmethod
    def _allowed(session: Session, check: policy.Request) -> bool:
        try:
            return policy.decide(session.policies, check) is policy.Decision.ALLOW
        except policy.PolicyError:
            return False

    def _missing_object_as_403(
        self,
        request: ApiRequest,
        session: Session,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Any:
        bucket = request.path.lstrip("/").partition("/")[0]
        listing = policy.Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": ""})
        if self._allowed(session, listing):
            return self._app(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = list(self._app(environ, capture))
        if captured["status"].startswith("404"):
            return _error(request, "denied", "Access Denied")(start_response)
        start_response(captured["status"], captured["headers"])
        return chunks

    def _serve_denials(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            if environ["REQUEST_METHOD"] == "DELETE":
                self.denials.clear()
            body = json.dumps([asdict(d) for d in self.denials]).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    def take_denials(self) -> list[Denial]:
        """The denials recorded so far, forgetting them."""
        with self._lock:
            taken, self.denials = self.denials, []
        return taken


def _because(decision: policy.Decision, action: str) -> str:
    """AWS's wording of why (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html)."""
    if decision is policy.Decision.EXPLICIT_DENY:
        return f"with an explicit deny in an identity-based policy for the {action} action"
    return f"because no identity-based policy allows the {action} action"


# ---------------------------------------------------------------------------- identities


def _session(account: str, access_key: str) -> Session | None:
    """The STS session (and its role's inline policies) that issued ``access_key``."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    if assumed is None:
        return None
    role = iam_backends[account]["aws"].get_role(assumed.role_arn.split("/")[-1])
    documents = [json.loads(document) for document in role.policies.values()]
    return Session(assumed.arn, assumed.secret_access_key, assumed.session_token, documents)


class _MotoResources:
    """``tracerstack.iam.requests.Resources`` from moto's backends (this process's)."""

    def __init__(self, account: str) -> None:
        self._account = account

    def secret_arn(self, region: str, secret_id: str) -> str:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[self._account][region]
        try:
            return str(backend.describe_secret(secret_id).arn)
        except Exception:  # an unknown secret: authorized on the ARN its name would have
            if secret_id.startswith("arn:"):
                return secret_id
            return f"arn:aws:secretsmanager:{region}:{self._account}:secret:{secret_id}"

    def kms_key_arn(self, region: str, key_id: str) -> str:
        from moto.kms.models import kms_backends

        backend = kms_backends[self._account][region]
        try:
            return str(backend.describe_key(key_id).arn)
        except Exception:
            return key_id

    def object_kms_key(self, bucket: str, key: str) -> str | None:
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self._account]["aws"].get_object(bucket, key)
        except Exception:
            return None
        kms_key = getattr(found, "kms_key_id", None) if found is not None else None
        if not kms_key:
            return None
        region = str(s3_backends[self._account]["aws"].get_bucket(bucket).region_name)
        return self.kms_key_arn(region, str(kms_key))

    def bucket_kms_key(self, bucket: str) -> str | None:
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self._account]["aws"].get_bucket(bucket)
        except Exception:
            return None
        rules = (getattr(found, "encryption", None) or {}).get("Rule") or []
        for rule in [rules] if isinstance(rules, dict) else rules:  # moto keeps parsed XML
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm", "").startswith("aws:kms") and default.get(
                "KMSMasterKeyID"
            ):
                return self.kms_key_arn(found.region_name, default["KMSMasterKeyID"])
        return None


# ---------------------------------------------------------------------------- the request


def _field(authorization: str, name: str) -> str:
    return authorization.partition(f"{name}=")[2].partition(",")[0].strip()


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back so moto reads it too."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body: bytes = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _raw_target(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = environ.get("QUERY_STRING")
    return quote(environ.get("PATH_INFO", "/")) + (f"?{query}" if query else "")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        name[5:].replace("_", "-").lower(): str(value)
        for name, value in environ.items()
        if name.startswith("HTTP_")
    }
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = str(environ[name])
    return headers


def _signature_matches(
    request: ApiRequest, access_key: str, session: Session, authorization: str
) -> bool:
    """SigV4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html), computed
    with botocore's signer from the session's secret, as moto's own check does."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = _field(authorization, "SignedHeaders").split(";")
    headers = {name: request.headers.get(name, "") for name in signed}
    aws_request = AWSRequest(
        method=request.method, url=request.target, data=request.body, headers=headers
    )
    aws_request.context["timestamp"] = request.headers.get("x-amz-date", "")
    signer = S3SigV4Auth if request.service == "s3" else SigV4Auth
    auth = signer(
        Credentials(access_key, session.secret_key, session.token), request.service, request.region
    )
    canonical = auth.canonical_request(aws_request)
    expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
    return bool(expected == _field(authorization, "Signature"))


def _reads_an_object(request: ApiRequest) -> bool:
    return (
        request.service == "s3"
        and request.method in ("GET", "HEAD")
        and "/" in request.path.lstrip("/")
    )


# ---------------------------------------------------------------------------- answers

# The refusal's error code in each protocol: (JSON, query/XML, S3)
_CODES = {
    "denied": ("AccessDeniedException", "AccessDenied", "AccessDenied"),
    "invalid-key": ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"),
    "signature": ("InvalidSignatureException", "SignatureDoesNotMatch", "SignatureDoesNotMatch"),
}


def _error(request: ApiRequest, kind: str, message: str) -> Callable[[Callable[..., Any]], Any]:
    """A WSGI answer refusing ``request`` in its service's error shape."""
    json_code, query_code, s3_code = _CODES[kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if request.service == "s3":
        status = "403 Forbidden"
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{s3_code}</Code>"
            f"<Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers.append(("Content-Type", "application/xml"))
        if request.method == "HEAD":
            body = b""
    elif "x-amz-target" in request.headers:
        status = "400 Bad Request"
        body = json.dumps({"__type": json_code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", json_code)]
        if request.headers.get("x-amzn-query-mode") == "true":
            # A service that moved from the query protocol (SQS, CloudWatch) keeps its query
            # error codes in this header, which botocore reads.
            headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    else:
        status = "403 Forbidden"
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{query_code}</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    headers.append(("Content-Length", str(len(body))))

    def answer(start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, headers)
        return [body]

    return answer


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
