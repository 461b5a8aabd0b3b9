"""The pure rules of Google's verification contract: accepted test types, Google's JSON
decoding (415/413/400, case-insensitive names), certificate claims and their ES256 JWT,
the apps document, and the certificate check of /v1/publish against them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from covidtracer.publish import certificate
from covidtracer.publish.model import PublishApiError, parse_publish
from covidtracer.verification import model
from covidtracer.verification.model import JsonRequest, VerificationApiError

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("accept", "types"),
    [
        (None, {"confirmed", "likely", "negative", "user-report"}),
        (["confirmed"], {"confirmed"}),
        (["likely"], {"confirmed", "likely"}),
        (["negative"], {"confirmed", "likely", "negative"}),
        (["user-report"], {"confirmed", "user-report"}),
        (["CONFIRMED", "user-report"], {"confirmed", "user-report"}),
    ],
)
def test_accepted_test_types_are_googles(accept, types) -> None:
    assert model.accepted_test_types(accept) == frozenset(types)


def test_an_unknown_accepted_test_type_is_invalid_test_type() -> None:
    with pytest.raises(VerificationApiError) as raised:
        model.accepted_test_types(["positive"])
    assert (raised.value.status, raised.value.code) == (400, "invalid_test_type")


def _refuse(status: int, message: str) -> VerificationApiError:
    return VerificationApiError(status, "unparsable_request", message)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b'{"code": "1"}', 415),
        ("", b'{"code": "1"}', 415),
        ("application/json", b"x" * 64_001, 413),
        ("application/json", b"", 400),
        ("application/json", b"[1]", 400),
        ("application/json", b'{"code": NaN}', 400),
        ("application/json", b'{"code": "1", "other": 2}', 400),
    ],
)
def test_googles_decoder_refuses_what_jsonutil_refuses(content_type, body, status) -> None:
    with pytest.raises(VerificationApiError) as raised:
        model.decode_json(JsonRequest(body, content_type), model.VERIFY_FIELDS, _refuse)
    assert raised.value.status == status


def test_field_names_match_case_insensitively_and_come_back_in_the_contracts_spelling() -> None:
    request = JsonRequest(b'{"EKEYHMAC": "x", "token": "t"}', "application/json; charset=utf-8")
    assert model.decode_json(request, model.CERTIFICATE_FIELDS, _refuse) == {
        "ekeyhmac": "x",
        "token": "t",
    }


def test_the_verify_answer_omits_an_unset_date() -> None:
    assert model.verify_response(1, date(2021, 10, 10), "t") == {
        "testtype": "confirmed",
        "symptomDate": "2021-10-10",
        "token": "t",
    }
    assert model.verify_response(2, None, "t") == {"testtype": "likely", "token": "t"}


@pytest.mark.parametrize("mac", ["", "%%%", base64.b64encode(bytes(31)).decode()])
def test_an_ekeyhmac_that_is_not_32_bytes_of_base64_is_hmac_invalid(mac: str) -> None:
    with pytest.raises(VerificationApiError) as raised:
        model.parse_certificate({"token": "t", "ekeyhmac": mac})
    assert raised.value.code == "hmac_invalid"


def test_an_unpadded_url_safe_ekeyhmac_is_accepted_as_google_accepts_it() -> None:
    mac = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    assert model.parse_certificate({"token": "t", "ekeyhmac": mac}).ekeyhmac == mac


ISSUER = model.Issuer(
    kid="v1",
    issuer="nz.example.issuer",
    audience="nz.example.keyserver",
    lifetime=timedelta(minutes=15),
    clock_skew=timedelta(seconds=5),
)


def test_certificate_claims_are_googles() -> None:
    claims = model.certificate_claims(ISSUER, 2, date(2021, 10, 12), "mac", NOW)
    now = int(NOW.timestamp())
    assert claims == {
        "reportType": "likely",
        "tekmac": "mac",
        "aud": "nz.example.keyserver",
        "iss": "nz.example.issuer",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 900,
        "symptomOnsetInterval": int(datetime(2021, 10, 12, tzinfo=UTC).timestamp()) // 600,
    }
    assert "symptomOnsetInterval" not in model.certificate_claims(ISSUER, 1, None, "m", NOW)


class _Signer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def sign_raw(self, message: bytes) -> bytes:
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def test_the_es256_jwt_verifies_with_pyjwt_and_names_its_kid() -> None:
    import jwt

    signer = _Signer()
    token = model.es256_jwt("v7", {"iss": "a", "exp": 4_000_000_000}, signer.sign_raw)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "v7", "typ": "JWT"}
    assert jwt.decode(token, signer.pem(), algorithms=["ES256"])["iss"] == "a"


def test_the_apps_document_holds_api_keys_by_digest_and_health_authorities() -> None:
    document = model.parse_apps_document(
        json.dumps(
            {
                "apiKey": "k" * 20,
                "apps": [{"name": "partner", "apiKey": "p" * 20}],
                "healthAuthorities": [
                    {"issuer": "i", "audience": "a", "healthAuthorityIDs": ["app"],
                     "keys": [{"kid": "v1", "publicKeyPem": "PEM",
                               "validUntil": "2021-01-01T00:00:00Z"}]}
                ],
            }
        )
    )  # fmt: skip
    assert document.app_for("k" * 20) == "enx"
    assert document.app_for("p" * 20) == "partner"
    assert document.app_for("x" * 20) is None and document.app_for(None) is None
    (authority,) = document.authorities
    assert authority.app_ids == {"app"} and not authority.keys["v1"].valid_at(NOW)
    for bad in (
        "[]",
        "{}",
        '{"apiKey": "short"}',
        '{"apiKey": "' + "k" * 20 + '", "healthAuthorities": [{}]}',
    ):
        with pytest.raises(ValueError, match=r"apps document|apiKey|health authority"):
            model.parse_apps_document(bad)


# ------------------------------------------------------------------ the key server's check

SECRET = bytes(range(1, 17))
KEYS = [
    {"key": "z2Cx9hdz2SlxZ8GEgqTYpA==", "rollingStartNumber": 1, "rollingPeriod": 144,
     "transmissionRisk": 3},
    {"key": "dPCphLzfG4uzXneNimkPRQ==", "rollingStartNumber": 144, "rollingPeriod": 144,
     "transmissionRisk": 5},
]  # fmt: skip
TEKMAC = "2u1nHt5WWurJytFLF3xitNzM99oNrad2y4YGOL53AeY="  # vectors/README.md


def _authority(signer: _Signer, **changes) -> model.HealthAuthority:
    fields = {
        "issuer": ISSUER.issuer,
        "audience": ISSUER.audience,
        "keys": {"v1": model.AuthorityKey(signer.pem())},
        "app_ids": frozenset({"app"}),
        **changes,
    }
    return model.HealthAuthority(**fields)


def _certificate(signer: _Signer, **claims) -> str:
    base = model.certificate_claims(ISSUER, 2, date(2021, 10, 12), TEKMAC, NOW)
    return model.es256_jwt(claims.pop("kid", "v1"), {**base, **claims}, signer.sign_raw)


def _verify(token: str, authority: model.HealthAuthority, app: str = "app", at=NOW):
    sent = parse_publish({"temporaryExposureKeys": KEYS}).keys
    hmac_key = base64.b64encode(SECRET).decode()
    return certificate.verify(token, [authority], app, sent, hmac_key, at)


def test_a_certificate_with_googles_tekmac_vector_is_accepted() -> None:
    signer = _Signer()
    claims = _verify(_certificate(signer), _authority(signer))
    assert claims.report_type == "likely"
    assert (
        claims.symptom_onset_interval == int(datetime(2021, 10, 12, tzinfo=UTC).timestamp()) // 600
    )


@pytest.mark.parametrize(
    "case",
    [
        "unknown issuer",
        "wrong audience",
        "unknown kid",
        "expired key",
        "other signer",
        "expired",
        "issued in the future",
        "app not allowed",
        "bad report type",
        "tekmac of other keys",
        "not a jwt",
    ],
)
def test_a_certificate_failing_any_check_is_certificate_invalid(case: str) -> None:
    signer = _Signer()
    authority = _authority(signer)
    token, at, app = _certificate(signer), NOW, "app"
    if case == "unknown issuer":
        token = _certificate(signer, iss="someone.else")
    elif case == "wrong audience":
        token = _certificate(signer, aud="other.keyserver")
    elif case == "unknown kid":
        token = _certificate(signer, kid="v2")
    elif case == "expired key":
        authority = _authority(
            signer, keys={"v1": model.AuthorityKey(signer.pem(), valid_until=NOW)}
        )
    elif case == "other signer":
        token = _certificate(_Signer())
    elif case == "expired":
        at = NOW + timedelta(minutes=16)
    elif case == "issued in the future":
        at = NOW - timedelta(seconds=6)
    elif case == "app not allowed":
        app = "other.app"
    elif case == "bad report type":
        token = _certificate(signer, reportType="positive")
    elif case == "tekmac of other keys":
        token = _certificate(signer, tekmac=base64.b64encode(bytes(32)).decode())
    else:
        token = "not-a-jwt"
    with pytest.raises(PublishApiError) as raised:
        _verify(token, authority, app, at)
    assert (raised.value.status, raised.value.code) == (
        401,
        "health_authority_verification_certificate_invalid",
    )
