"""The CloudFront stand-in: the feed and the ENF files, anonymously, from private buckets."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tracerstack import clients
from tracerstack.bootstrap import Bootstrap
from tracerstack.edge import EdgeServer, serve_in_thread
from tracerstack.pytest_plugin import free_port, http

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def edge(aws_stack: Bootstrap) -> Iterator[str]:
    port = free_port()
    server: EdgeServer = serve_in_thread(
        "127.0.0.1",
        port,
        aws_endpoint=aws_stack.endpoint_url,
        region=aws_stack.region,
        feed_bucket=aws_stack.outputs["FeedBucket"],
        enf_bucket=aws_stack.outputs["EnfExportsBucket"],
    )
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def _get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """An anonymous request: no credential of any kind, as the app reads the feed."""
    answer = http(method, url, headers=headers)
    return answer.status, answer.headers, answer.body


def _feed(aws_stack: Bootstrap) -> list[dict[str, str]]:
    items = [dict.fromkeys(clients.FEED_ITEM_FIELDS, "x")]
    aws_stack.client("s3").put_object(
        Bucket=aws_stack.outputs["FeedBucket"],
        Key="current-exposure-events.json",
        Body=gzip.compress(json.dumps({"items": items}).encode()),
        ContentType="application/json",
        ContentEncoding="gzip",
        CacheControl="public, max-age=300",
    )
    return items


def test_the_feed_is_read_anonymously_with_cloudfronts_headers(
    edge: str, aws_stack: Bootstrap
) -> None:
    items = _feed(aws_stack)
    status, headers, body = _get(f"{edge}/feed/current-exposure-events.json")
    assert status == 200
    assert clients.app_feed(body, headers) == items
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Via"].endswith(".cloudfront.net (CloudFront)")
    assert headers["X-Cache"] == "Miss from cloudfront"
    assert headers["X-Amz-Cf-Id"] and headers["X-Amz-Cf-Pop"] and headers["ETag"]
    assert headers["Last-Modified"].endswith(" GMT")
    status, _, body = _get(
        f"{edge}/feed/current-exposure-events.json", **{"If-None-Match": headers["ETag"]}
    )
    assert (status, body) == (304, b"")
    status, _, body = _get(f"{edge}/feed/current-exposure-events.json", method="HEAD")
    assert (status, body) == (200, b"")


def test_the_buckets_behind_it_stay_private(edge: str, aws_stack: Bootstrap) -> None:
    _feed(aws_stack)
    bucket = aws_stack.outputs["FeedBucket"]
    status, _, _ = _get(f"{aws_stack.endpoint_url}/{bucket}/current-exposure-events.json")
    assert status == 403  # anonymous, straight to S3
    status, headers, body = _get(f"{edge}/feed/no-such-object.json")
    assert status == 403 and b"AccessDenied" in body  # OAC cannot list: S3 says 403
    assert headers["X-Cache"] == "Error from cloudfront"
    request = urllib.request.Request(
        f"{edge}/feed/current-exposure-events.json", b"x", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert _get(f"{edge}/elsewhere/current-exposure-events.json")[0] == 403


def test_enf_files_are_served_as_bytes_and_the_index_compressed(
    edge: str, aws_stack: Bootstrap
) -> None:
    s3, bucket = aws_stack.client("s3"), aws_stack.outputs["EnfExportsBucket"]
    archive = b"PK\x03\x04" + bytes(range(256)) * 4
    path = "exposures/1634256000-1634259600-00001.zip"
    s3.put_object(Bucket=bucket, Key=path, Body=archive, ContentType="application/zip")
    index = "".join(f"exposures/{n:010d}-{n + 3600:010d}-00001.zip\n" for n in range(40))
    s3.put_object(
        Bucket=bucket, Key="exposures/index.txt", Body=index.encode(), ContentType="text/plain"
    )
    for accept in ("*/*", "application/zip"):  # iOS, Android (CLIENTS.md)
        status, headers, body = _get(
            f"{edge}/enf/{path}", Accept=accept, **{"Accept-Encoding": "gzip"}
        )
        assert (status, body, headers["Content-Type"]) == (200, archive, "application/zip")
        assert "Content-Encoding" not in headers
    status, headers, body = _get(f"{edge}/enf/exposures/index.txt", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).decode() == index
    status, headers, body = _get(f"{edge}/enf/exposures/index.txt")
    assert body.decode() == index and "Content-Encoding" not in headers
