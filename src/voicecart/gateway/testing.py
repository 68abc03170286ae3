"""Platform messages for tests and the benchmark: Alexa envelopes signed by a certificate chain made here.

:class:`AlexaSigner` makes a root, an intermediate and a signing certificate for
``echo-api.amazon.com`` and writes the chain where ``gateway.alexa.cert_dir`` reads local copies
(named like the URL's last part) and the root where ``gateway.alexa.trust_roots`` reads it. The
gateway's verification is the same code as in production; only what it trusts is the test's.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voicecart.serving.local import LocalServer

CHAIN_URL = "https://s3.amazonaws.com/echo.api/echo-api-cert-test.pem"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, ca: bool,
          not_before: datetime, not_after: datetime, san: str | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None if ca else None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                      key_encipherment=False, data_encipherment=False,
                                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = (builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                       key_encipherment=True, data_encipherment=False,
                                                       key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                       encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(san or subject)]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class AlexaSigner:
    """Signs request bodies the way Alexa does (RSA PKCS#1 v1.5 over SHA-256, base64) with a test chain."""

    folder: Path
    san: str = "echo-api.amazon.com"
    valid_days: int = 30

    def __post_init__(self) -> None:
        now = datetime.now(timezone.utc) - timedelta(minutes=5)
        root_key, inter_key, self._key = _key(), _key(), _key()
        root = _cert("voicecart test root", root_key, "voicecart test root", root_key, True, now, now + timedelta(days=365))
        inter = _cert("voicecart test intermediate", inter_key, "voicecart test root", root_key, True, now,
                      now + timedelta(days=365))
        leaf = _cert(self.san, self._key, "voicecart test intermediate", inter_key, False, now,
                     now + timedelta(days=self.valid_days), san=self.san)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cert_dir = self.folder / "certs"
        self.cert_dir.mkdir(exist_ok=True)
        (self.cert_dir / CHAIN_URL.rsplit("/", 1)[1]).write_bytes(_pem(leaf, inter))
        self.trust_roots = self.folder / "roots.pem"
        self.trust_roots.write_bytes(_pem(root))

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self._key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def headers(self, body: bytes, url: str = CHAIN_URL) -> dict[str, str]:
        return {"Signature-256": self.sign(body), "SignatureCertChainUrl": url, "content-type": "application/json"}


def alexa_envelope(request: Any, skill_id: str, user_id: str = "amzn1.ask.account.TEST",
                   session_id: str | None = None, attributes: dict | None = None,
                   access_token: str | None = None) -> bytes:
    """A request envelope built with ask_sdk_model types, serialized as Alexa sends it."""
    from ask_sdk_core.serialize import DefaultSerializer
    from ask_sdk_model import Application, Context, RequestEnvelope, Session, User
    from ask_sdk_model.interfaces.system import SystemState

    app = Application(application_id=skill_id)
    user = User(user_id=user_id, access_token=access_token)
    envelope = RequestEnvelope(
        version="1.0",
        session=Session(new=attributes is None, session_id=session_id or f"amzn1.echo-api.session.{uuid.uuid4()}",
                        application=app, user=user, attributes=attributes or {}),
        context=Context(system=SystemState(application=app, user=user, api_endpoint="https://api.amazonalexa.com")),
        request=request)
    return orjson.dumps(DefaultSerializer().serialize(envelope))


def intent_request(name: str, when: datetime | None = None, **slots: str | None) -> Any:
    """An ``IntentRequest`` for ``name`` with these slot values (None: the slot is empty)."""
    from ask_sdk_model import Intent, IntentConfirmationStatus, IntentRequest, Slot, SlotConfirmationStatus

    return IntentRequest(request_id=f"amzn1.echo-api.request.{uuid.uuid4()}", timestamp=when or datetime.now(timezone.utc),
                         locale="en-US", intent=Intent(name=name, confirmation_status=IntentConfirmationStatus.NONE,
                                                       slots={k: Slot(name=k, value=v,
                                                                      confirmation_status=SlotConfirmationStatus.NONE)
                                                              for k, v in slots.items()}))


class LocalGateway(LocalServer):
    """``voicecart gateway serve`` in a child process on a free localhost port (a context manager, as
    :class:`~voicecart.serving.local.LocalServer` is), with ``env`` holding its settings
    (``VOICECART_GATEWAY__*``, as the chart sets them)."""

    ready_path = "/healthz"

    def __init__(self, endpoint_url: str, env: dict[str, str], log_path: Path | None = None) -> None:
        super().__init__(Path("."), log_path=log_path, env=env)
        self.cmd = [str(Path(sys.executable).parent / "voicecart"), "gateway", "serve", "--port", str(self.port),
                    "--endpoint", endpoint_url]
        self.env = {**os.environ, **env}

    def cli(self, *args: str) -> str:
        """Another ``voicecart gateway`` command with the same settings (e.g. ``link``)."""
        return subprocess.run([self.cmd[0], "gateway", *args], env=self.env, capture_output=True, text=True,
                              check=True).stdout
