"""Google's ``POST /v1/publish`` through the Lambda handler into PostgreSQL, beside COVID
Green's ``POST /exposures`` upload (``enf_upload.py``) measured in the same run (issue 21).

No target of its own in DESIGN §7: the figure is printed beside the upload's (same keys per
request, same workers, same machine, same load). A publish does more than an upload: it
checks an ES256 certificate (signature, issuer, audience, times), the tekmac HMAC over the
keys, remembers the certificate, locks the keys it would revise, inserts the keys, and seals
a revision token (AES-GCM) and ~1.5 KB of response padding.

Certificates come from a health authority registered in the apps secret with a local P-256
key (the key-server side of another verification server: our own certificate key is in KMS,
and signing thousands through moto would measure moto). Each publish has its own
certificate, 14 daily keys and device secret, made beforehand (not measured).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/enf_publish.py [--uploads 4000] [--workers 2]

Last measured (2 workers, 2,000 requests, three runs on the shared 2-core machine with load
averages 13-24 from other engineers' tests): publish 84, 98, 94/s (median 94/s, p50 about
16 ms) beside the upload's 126, 140, 159/s (median 140/s, p50 about 12 ms): publish/upload
0.66x median (0.59-0.70). Absolute figures are far below a quiet machine's; the ratio is
the figure to compare. The common publish is one statement (as the upload); the rest is
the certificate's ES256 check, the HMAC, the revision token and the response padding.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apigw import proxy_event
from enf_upload import KEYS_PER_UPLOAD, TARGET_RATE, load_average, measure

ISSUER, AUDIENCE, APP_ID = "bench.verification", "bench.keyserver", "bench.app"


def _prepare_publish(database_url: str, count: int, workers: int) -> list[list[dict[str, Any]]]:
    """A health authority with a local key in the apps secret, then one certificate-bearing
    publish request per upload."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from covidtracer import aws
    from covidtracer.enfkeys.settings import enf_settings
    from covidtracer.verification import model
    from tracerstack.enx import enx_keys, tekmac

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret_id = enf_settings().verification.apps_secret_id
    document = json.loads(aws.secret_string(secret_id))
    document["healthAuthorities"] = [
        {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "healthAuthorityIDs": [APP_ID],
            "keys": [{"kid": "v1", "publicKeyPem": pem.decode()}],
        }
    ]
    aws.secrets().put_secret_value(SecretId=secret_id, SecretString=json.dumps(document))

    def sign_raw(message: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    issuer = model.Issuer("v1", ISSUER, AUDIENCE, timedelta(hours=1), timedelta(seconds=5))
    now = datetime.now(UTC)
    onset = date.today() - timedelta(days=5)
    events: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    for index in range(count):
        keys, secret = enx_keys(KEYS_PER_UPLOAD, now), os.urandom(32)
        claims = model.certificate_claims(issuer, 1, onset, tekmac(keys, secret), now)
        body = {
            "temporaryExposureKeys": keys,
            "healthAuthorityID": APP_ID,
            "verificationPayload": model.es256_jwt("v1", claims, sign_raw),
            "hmacKey": base64.b64encode(secret).decode(),
            "padding": base64.b64encode(os.urandom(1024)).decode(),
        }
        event = proxy_event("POST", "/v1/publish", "", body)
        del event["headers"]["Authorization"], event["multiValueHeaders"]["Authorization"]
        events[index % workers].append(event)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile the first worker")
    args = parser.parse_args()
    upload = measure(args.uploads, args.workers, False)
    publish = measure(args.uploads, args.workers, args.profile, _prepare_publish, 200)
    for label, m in (("COVID Green POST /exposures", upload), ("Google POST /v1/publish", publish)):
        print(
            f"{label} ({KEYS_PER_UPLOAD} keys, {args.workers} workers, {m.uploads} requests,"
            f" {m.stored} keys stored): {m.rate:,.0f}/s, p50 {m.p50_ms:.2f} ms,"
            f" p99 {m.p99_ms:.2f} ms"
        )
    print(
        f"publish/upload throughput {publish.rate / upload.rate:.2f}x"
        f" (the upload's target >= {TARGET_RATE:,}/s); load average {load_average()}"
    )


if __name__ == "__main__":
    main()
