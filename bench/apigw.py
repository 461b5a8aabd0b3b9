"""API Gateway (REST, proxy integration) events, as Lambda hands them to a Chalice app."""

from __future__ import annotations

import json
import uuid
from typing import Any


def proxy_event(method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    """A bearer-authenticated JSON request to ``path`` (no path parameters)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }
