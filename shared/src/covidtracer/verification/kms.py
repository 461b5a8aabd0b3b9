"""The certificate signer in AWS: KMS ``Sign`` on an ECC_NIST_P256 ``SIGN_VERIFY`` key (the
export signer's adapter), its DER signature turned into the JWS r||s form (RFC 7518 §3.4)."""

from __future__ import annotations

from covidtracer.enffiles.kms import KmsSigner

P256_COORDINATE_BYTES = 32


class CertificateSigner:
    """``sign_raw`` for ``model.es256_jwt``; ``public_key_pem`` is what a key server needs
    to check the certificates (``publish`` registers it for this deployment's issuer).
    Raises ``Unavailable`` when KMS fails."""

    def __init__(self, signer: KmsSigner) -> None:
        self._signer = signer

    def sign_raw(self, signing_input: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._signer.sign(signing_input))
        return r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")

    def public_key_pem(self) -> str:
        return self._signer.public_key_pem()
