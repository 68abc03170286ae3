"""Alexa request verification for a skill hosted as a web service (not on Lambda).

The rules and their values are the ASK SDK's (``ask_sdk_webservice_support.verifier_constants``:
header names, the certificate URL's scheme, host, path and port, the signing domain, the 150 s
window), and each check keeps the SDK's ``verify(headers, serialized_request_env,
deserialized_request_env)`` shape. The SDK's own ``RequestVerifier`` cannot be imported on
OpenSSL >= 3.0.10 (its chain check goes through certvalidator -> oscrypto 1.3.0, which fails to
read such version strings: wbond/oscrypto#78, fixed upstream but unreleased), so the chain is
validated by ``cryptography``'s X.509 path verifier instead, and the body signature with
``cryptography`` exactly as the SDK does. No crypto of our own.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import httpx
from ask_sdk_runtime.exceptions import AskSdkException
from ask_sdk_webservice_support import verifier_constants as rules
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

MAX_CHAIN_BYTES = 64 * 1024


class VerificationFailed(AskSdkException):
    """The request is not a genuine, fresh Alexa request for this skill; the message says which check failed."""


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


class SignatureVerifier:
    """``Signature-256`` over the raw body, by the certificate chain at ``SignatureCertChainUrl``.

    The chain is fetched once per URL (or read from ``cert_dir``, the local copies a pod without
    egress mounts) and validated: to a trusted root, within its validity, with
    ``echo-api.amazon.com`` among the signing certificate's names and a digital-signature key usage.
    A chain's verdict is kept for ``revalidate_s`` (and never past its signing certificate's expiry),
    so a request usually costs one RSA signature check.
    """

    def __init__(self, cert_dir: Path | None = None, trust_roots: Path | None = None,
                 fetch_timeout_s: float = 2.0, revalidate_s: float = 300.0) -> None:
        self.cert_dir = cert_dir
        self.fetch_timeout_s = fetch_timeout_s
        self.revalidate_s = revalidate_s
        roots_file = trust_roots or Path(_certifi_bundle())
        with warnings.catch_warnings():  # one of certifi's roots has a negative serial number
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            self._roots = Store(x509.load_pem_x509_certificates(roots_file.read_bytes()))
        self._chains: dict[str, list[x509.Certificate]] = {}
        self._verdicts: dict[str, tuple[float, x509.Certificate]] = {}
        self._lock = threading.Lock()

    # -- the SDK's AbstractVerifier contract ------------------------------------------------------
    def verify(self, headers: Any, serialized_request_env: bytes | str, deserialized_request_env: Any = None) -> None:
        url = _header(headers, rules.SIGNATURE_CERT_CHAIN_URL_HEADER)
        signature = _header(headers, rules.SIGNATURE_HEADER)
        if not url or not signature:
            raise VerificationFailed(f"{rules.SIGNATURE_HEADER} / {rules.SIGNATURE_CERT_CHAIN_URL_HEADER}: "
                                     "header missing")
        self.validate_url(url)
        leaf = self._signer(url)
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationFailed(f"{rules.SIGNATURE_HEADER}: not base64") from None
        body = serialized_request_env.encode(rules.CHARACTER_ENCODING) if isinstance(serialized_request_env, str) \
            else serialized_request_env
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationFailed("signing certificate: not an RSA key")
        try:
            key.verify(raw, body, PKCS1v15(), SHA256())
        except InvalidSignature:
            raise VerificationFailed("body: does not match its Signature-256 (tampered or not from Alexa)") from None

    # -- the steps ---------------------------------------------------------------------------------
    @staticmethod
    def validate_url(url: str) -> None:
        """The SDK's URL rules: https, host s3.amazonaws.com, path under /echo.api/, port 443 if given."""
        try:
            parsed = urlparse(url)
            port = parsed.port
        except ValueError:
            raise VerificationFailed("SignatureCertChainUrl: not a URL") from None
        if parsed.scheme.lower() != rules.CERT_CHAIN_URL_PROTOCOL:
            raise VerificationFailed(f"SignatureCertChainUrl: scheme {parsed.scheme!r} is not https")
        if (parsed.hostname or "").lower() != rules.CERT_CHAIN_URL_HOSTNAME:
            raise VerificationFailed(f"SignatureCertChainUrl: host {parsed.hostname!r} is not "
                                     f"{rules.CERT_CHAIN_URL_HOSTNAME}")
        if not os.path.normpath(parsed.path).startswith(rules.CERT_CHAIN_URL_STARTPATH):
            raise VerificationFailed(f"SignatureCertChainUrl: path {parsed.path!r} is not under "
                                     f"{rules.CERT_CHAIN_URL_STARTPATH}")
        if port is not None and port != rules.CERT_CHAIN_URL_PORT:
            raise VerificationFailed(f"SignatureCertChainUrl: port {port} is not {rules.CERT_CHAIN_URL_PORT}")

    def _signer(self, url: str) -> x509.Certificate:
        with self._lock:
            verdict = self._verdicts.get(url)
        if verdict is not None and time.monotonic() < verdict[0] and \
                datetime.now(timezone.utc) < verdict[1].not_valid_after_utc:
            return verdict[1]
        leaf = self.validated_signer(url)
        with self._lock:
            self._verdicts[url] = (time.monotonic() + self.revalidate_s, leaf)
        return leaf

    def validated_signer(self, url: str, now: datetime | None = None) -> x509.Certificate:
        leaf, *intermediates = self.chain(url)
        now = now or datetime.now(timezone.utc)
        verifier = (PolicyBuilder().store(self._roots).time(now.replace(tzinfo=None))
                    .build_server_verifier(x509.DNSName(rules.CERT_CHAIN_DOMAIN)))
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise VerificationFailed(f"certificate chain: not valid ({exc})") from None
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise VerificationFailed("signing certificate: no key usage") from None
        if not usage.digital_signature:
            raise VerificationFailed("signing certificate: key usage lacks digital signature")
        return leaf

    def chain(self, url: str) -> list[x509.Certificate]:
        with self._lock:
            cached = self._chains.get(url)
        if cached is not None:
            return cached
        pem = self._read_local(url) if self.cert_dir is not None else self._fetch(url)
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise VerificationFailed("certificate chain: not PEM certificates") from None
        with self._lock:
            self._chains[url] = certs
        return certs

    def cached(self, url: str) -> bool:
        with self._lock:
            return url in self._chains

    def _read_local(self, url: str) -> bytes:
        assert self.cert_dir is not None
        name = PurePosixPath(urlparse(url).path).name
        path = self.cert_dir / name
        if not name or not path.is_file():
            raise VerificationFailed(f"SignatureCertChainUrl: no local copy of {name!r} in the certificate folder")
        return path.read_bytes()[:MAX_CHAIN_BYTES]

    def _fetch(self, url: str) -> bytes:
        try:
            response = httpx.get(url, timeout=self.fetch_timeout_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise VerificationFailed(f"SignatureCertChainUrl: could not fetch ({type(exc).__name__})") from None
        if response.status_code != 200 or len(response.content) > MAX_CHAIN_BYTES:
            raise VerificationFailed(f"SignatureCertChainUrl: fetch answered HTTP {response.status_code}")
        return response.content


class TimestampVerifier:
    """``request.timestamp`` within the tolerance (150 s) of now; skill events get the SDK's hour."""

    def __init__(self, tolerance_s: float = rules.MAX_NORMAL_REQUEST_TOLERANCE_IN_MILLIS / 1000) -> None:
        self.tolerance_s = min(tolerance_s, rules.MAX_NORMAL_REQUEST_TOLERANCE_IN_MILLIS / 1000)

    def verify(self, headers: Any, serialized_request_env: Any, deserialized_request_env: Any,
               now: datetime | None = None) -> None:
        request = getattr(deserialized_request_env, "request", None)
        stamp = getattr(request, "timestamp", None)
        if stamp is None:
            raise VerificationFailed("request.timestamp: missing")
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        off = abs(((now or datetime.now(timezone.utc)) - stamp).total_seconds())
        if off <= self.tolerance_s:
            return
        if request.object_type in rules.ALEXA_SKILL_EVENT_LIST and off <= rules.MAX_SKILL_EVENT_TOLERANCE_IN_MILLIS / 1000:
            return
        raise VerificationFailed(f"request.timestamp: {off:.0f} s from now (more than {self.tolerance_s:.0f} s)")


class SkillIdVerifier:
    """The request is for one of this deployment's skills (``applicationId``)."""

    def __init__(self, skill_ids: list[str]) -> None:
        self.skill_ids = frozenset(skill_ids)

    def verify(self, headers: Any, serialized_request_env: Any, deserialized_request_env: Any) -> None:
        ids = {application_id(deserialized_request_env)}
        session = getattr(deserialized_request_env, "session", None)
        if session is not None and session.application is not None:
            ids.add(session.application.application_id)
        ids.discard(None)
        if not ids or not ids <= self.skill_ids:
            raise VerificationFailed("applicationId: not this skill's")


def application_id(envelope: Any) -> str | None:
    system = getattr(getattr(envelope, "context", None), "system", None)
    app = getattr(system, "application", None)
    return getattr(app, "application_id", None)


def _certifi_bundle() -> str:
    import certifi

    return certifi.where()
