"""The local stand-in for CloudFront: serves the feed and the ENF files anonymously.

In AWS two CloudFront distributions read the private feed and ENF export buckets through
origin access control (``infra/templates/edge.yaml``); phones read them with no credential
of any kind (CLIENTS.md). Here one server plays both, on its own port:

- ``GET|HEAD /feed/<key>``  → the feed bucket's object (``current-exposure-events.json``);
- ``GET|HEAD /enf/<key>``   → the ENF export bucket's object (``exposures/index.txt``, zips).

It reads the buckets with the stack's credentials, as origin access control signs for
CloudFront, so the buckets stay private. Answers carry what CloudFront sends: the object's
``Content-Type``, ``Content-Encoding``, ``Cache-Control``, ``ETag`` and ``Last-Modified``,
plus ``Via``, ``X-Cache``, ``X-Amz-Cf-Pop`` and ``X-Amz-Cf-Id``; ``If-None-Match`` gives
304; a missing object is S3's 403 ``AccessDenied`` (origin access control cannot list);
any other method is CloudFront's 403 for a GET/HEAD-only distribution. The ENF
distribution compresses text for a client that accepts gzip, as ``Compress: true`` does.
"""

from __future__ import annotations

import base64
import gzip
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracerstack import in_thread, serve, server_arguments

POP = "AKL50-C1"
# CloudFront's Compress: true compresses these types, between 1,000 and 10,000,000 bytes.
COMPRESSIBLE = ("text/", "application/json", "application/xml", "application/javascript")
COMPRESS_MIN, COMPRESS_MAX = 1_000, 10_000_000
_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
_METHOD_REFUSED = (
    b"This distribution is not configured to allow the HTTP request method that was used "
    b"for this request. The distribution supports only cachable requests."
)


class Distribution:
    """One CloudFront distribution: its bucket, and whether it compresses."""

    def __init__(self, bucket: str, compress: bool) -> None:
        self.bucket = bucket
        self.compress = compress


class _Handler(BaseHTTPRequestHandler):
    server: EdgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        self._refuse_method()

    def do_PUT(self) -> None:
        self._refuse_method()

    def do_DELETE(self) -> None:
        self._refuse_method()

    def do_PATCH(self) -> None:
        self._refuse_method()

    def _refuse_method(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer(403, {"Content-Type": "text/plain"}, _METHOD_REFUSED, "Error")

    def _answer(
        self, status: int, headers: dict[str, str], body: bytes, cache: str, send_body: bool = True
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server", "AmazonS3")
        self.send_header("Via", f"1.1 {secrets.token_hex(16)}.cloudfront.net (CloudFront)")
        self.send_header("X-Cache", f"{cache} from cloudfront")
        self.send_header("X-Amz-Cf-Pop", POP)
        self.send_header("X-Amz-Cf-Id", base64.urlsafe_b64encode(secrets.token_bytes(42)).decode())
        self.end_headers()
        if send_body and status not in (204, 304):
            self.wfile.write(body)

    def _serve(self, *, send_body: bool) -> None:
        if self.path == "/_health":  # the stack's start-up probe; not a CloudFront path
            self._answer(200, {"Content-Type": "text/plain"}, b"ok", "Miss", send_body)
            return
        prefix, _, key = self.path.split("?", 1)[0].lstrip("/").partition("/")
        distribution = self.server.distributions.get(prefix)
        if distribution is None or not key:
            self._answer(403, {"Content-Type": "application/xml"}, _ACCESS_DENIED, "Error")
            return
        found = self.server.fetch(distribution.bucket, key)
        if found is None:
            self._answer(403, {"Content-Type": "application/xml"}, _ACCESS_DENIED, "Error")
            return
        body, headers = found
        if self.headers.get("If-None-Match") == headers.get("ETag"):
            self._answer(304, {"ETag": headers["ETag"]}, b"", "RefreshHit", send_body)
            return
        accepts_gzip = "gzip" in str(self.headers.get("Accept-Encoding", ""))
        if (
            distribution.compress
            and accepts_gzip
            and "Content-Encoding" not in headers
            and headers.get("Content-Type", "").startswith(COMPRESSIBLE)
            and COMPRESS_MIN <= len(body) <= COMPRESS_MAX
        ):
            body = gzip.compress(body, mtime=0)
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        self._answer(200, headers, body, "Miss", send_body)


class EdgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], distributions: dict[str, Distribution], s3: Any
    ) -> None:
        super().__init__(address, _Handler)
        self.distributions = distributions
        self._s3 = s3
        self._lock = threading.Lock()

    def fetch(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None:
        """The object's bytes and the headers CloudFront passes on; None if it is missing."""
        from botocore.exceptions import ClientError

        try:
            with self._lock:  # one boto3 client, shared by the request threads
                found = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        headers = {"Content-Type": found.get("ContentType") or "binary/octet-stream"}
        for name, field in (
            ("Content-Encoding", "ContentEncoding"),
            ("Cache-Control", "CacheControl"),
            ("ETag", "ETag"),
        ):
            if found.get(field):
                headers[name] = str(found[field])
        modified = found.get("LastModified")
        if modified is not None:
            headers["Last-Modified"] = modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return found["Body"].read(), headers


def make_server(
    host: str, port: int, *, aws_endpoint: str, region: str, feed_bucket: str, enf_bucket: str
) -> EdgeServer:
    import boto3

    s3 = boto3.session.Session().client("s3", region_name=region, endpoint_url=aws_endpoint)
    distributions = {
        "feed": Distribution(feed_bucket, compress=False),  # the feed is stored gzip-encoded
        "enf": Distribution(enf_bucket, compress=True),
    }
    return EdgeServer((host, port), distributions, s3)


def serve_in_thread(host: str, port: int, **buckets: str) -> EdgeServer:
    return in_thread(make_server(host, port, **buckets), "edge")


def main() -> None:
    parser = server_arguments("Local CloudFront stand-in (feed, ENF files)", 8026)
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--feed-bucket", required=True)
    parser.add_argument("--enf-bucket", required=True)
    args = parser.parse_args()
    server = make_server(
        args.host,
        args.port,
        aws_endpoint=args.aws_endpoint,
        region=os.environ.get("AWS_REGION", "ap-southeast-2"),
        feed_bucket=args.feed_bucket,
        enf_bucket=args.enf_bucket,
    )
    serve(server, "edge")


if __name__ == "__main__":
    main()
