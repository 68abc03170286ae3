"""Alexa: the request checks (signature over the raw body, chain, URL rules, 150 s, skill id) with a
chain this test makes, the mapping of ask_sdk_model requests to turns, and the SSML reply."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from ask_sdk_model import LaunchRequest, SessionEndedRequest

from voicecart.gateway.alexa import AlexaSkill
from voicecart.gateway.alexa_verify import SignatureVerifier, TimestampVerifier, VerificationFailed
from voicecart.gateway.mapping import Action, CartLine, Reply, SessionState
from voicecart.gateway.settings import AlexaSettings
from voicecart.gateway.testing import CHAIN_URL, AlexaSigner, alexa_envelope, intent_request

SKILL = "amzn1.ask.skill.11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> AlexaSigner:
    return AlexaSigner(tmp_path_factory.mktemp("alexa"))


@pytest.fixture(scope="module")
def skill(signer: AlexaSigner) -> AlexaSkill:
    settings = AlexaSettings(enabled=True, skill_ids=[SKILL], cert_dir=signer.cert_dir, trust_roots=signer.trust_roots)
    return AlexaSkill(settings, conversations=None)  # type: ignore[arg-type] - only verification and mapping here


def verified(skill: AlexaSkill, headers: dict, body: bytes):  # noqa: ANN201
    return asyncio.run(skill.verified(headers, body))


def test_a_good_signature_from_the_trusted_chain_is_accepted(skill, signer):
    body = alexa_envelope(intent_request("AddItemIntent", product="milk", quantity="2"), SKILL)
    envelope = verified(skill, signer.headers(body), body)
    turn = skill.turn(envelope)
    assert turn.action is Action.resolve and turn.utterance == "add 2 milk" and turn.locale == "en-US"
    assert turn.users == ("amzn1.ask.account.TEST",)


def test_a_tampered_body_is_refused(skill, signer):
    body = alexa_envelope(intent_request("AddItemIntent", product="milk"), SKILL)
    headers = signer.headers(body)
    with pytest.raises(VerificationFailed, match="body: does not match its Signature-256"):
        verified(skill, headers, body.replace(b"milk", b"wine"))


@pytest.mark.parametrize("url, reason", [
    ("http://s3.amazonaws.com/echo.api/echo-api-cert-test.pem", "scheme"),
    ("https://notamazon.com/echo.api/echo-api-cert-test.pem", "host"),
    ("https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-test.pem", "path"),
    ("https://s3.amazonaws.com/echo.api/../invalid.pem", "path"),
    ("https://s3.amazonaws.com:563/echo.api/echo-api-cert-test.pem", "port"),
    ("https://s3.amazonaws.com:not-a-port/echo.api/x.pem", "not a URL"),
])
def test_certificate_chain_urls_outside_the_sdk_rules_are_refused(skill, signer, url, reason):
    body = alexa_envelope(intent_request("AddItemIntent", product="milk"), SKILL)
    with pytest.raises(VerificationFailed, match=f"SignatureCertChainUrl: .*{reason}"):
        verified(skill, signer.headers(body, url=url), body)


def test_the_rules_accept_their_allowed_variants():
    for url in ("https://s3.amazonaws.com/echo.api/echo-api-cert.pem", "HTTPS://s3.AmazonAWS.com/echo.api/x.pem",
                "https://s3.amazonaws.com:443/echo.api/x.pem", "https://s3.amazonaws.com/echo.api/../echo.api/x.pem"):
        SignatureVerifier.validate_url(url)


def test_missing_headers_and_a_non_base64_signature_are_refused(skill, signer):
    body = alexa_envelope(intent_request("AddItemIntent", product="milk"), SKILL)
    with pytest.raises(VerificationFailed, match="header missing"):
        verified(skill, {"content-type": "application/json"}, body)
    with pytest.raises(VerificationFailed, match="not base64"):
        verified(skill, {**signer.headers(body), "Signature-256": "%%%"}, body)


def test_a_chain_that_does_not_lead_to_a_trusted_root_is_refused(signer, tmp_path):
    other = AlexaSigner(tmp_path / "other")  # a valid-looking chain from a root nobody trusts
    verifier = SignatureVerifier(other.cert_dir, trust_roots=signer.trust_roots)
    body = b'{"request": {}}'
    with pytest.raises(VerificationFailed, match="certificate chain: not valid"):
        verifier.verify(other.headers(body), body)
    with pytest.raises(VerificationFailed, match="certificate chain: not valid"):  # certifi's roots: not either
        SignatureVerifier(other.cert_dir).verify(other.headers(body), body)


def test_a_signing_certificate_for_another_name_or_expired_is_refused(tmp_path):
    wrong = AlexaSigner(tmp_path / "wrong", san="echo-api.example.com")
    body = b'{"request": {}}'
    with pytest.raises(VerificationFailed, match="certificate chain"):
        SignatureVerifier(wrong.cert_dir, wrong.trust_roots).verify(wrong.headers(body), body)
    good = AlexaSigner(tmp_path / "later")
    verifier = SignatureVerifier(good.cert_dir, good.trust_roots)
    with pytest.raises(VerificationFailed, match="certificate chain: not valid"):
        verifier.validated_signer(CHAIN_URL, now=datetime.now(timezone.utc) + timedelta(days=60))


def test_no_local_copy_of_the_chain_is_a_refusal_not_a_crash(signer, tmp_path):
    verifier = SignatureVerifier(tmp_path, signer.trust_roots)
    body = b"{}"
    with pytest.raises(VerificationFailed, match="no local copy"):
        verifier.verify(signer.headers(body), body)


@pytest.mark.parametrize("offset_s, ok", [(0, True), (149, True), (-149, True), (151, False), (-151, False),
                                          (3600 * 5, False)])
def test_timestamps_more_than_150_s_off_are_refused(skill, signer, offset_s, ok):
    when = datetime.now(timezone.utc) - timedelta(seconds=offset_s)
    body = alexa_envelope(intent_request("AddItemIntent", when=when, product="milk"), SKILL)
    if ok:
        verified(skill, signer.headers(body), body)
    else:
        with pytest.raises(VerificationFailed, match="request.timestamp: .* s from now"):
            verified(skill, signer.headers(body), body)


def test_the_tolerance_can_be_tightened_never_widened():
    assert TimestampVerifier(30).tolerance_s == 30
    assert TimestampVerifier(900).tolerance_s == 150


def test_a_request_for_another_skill_is_refused(skill, signer):
    body = alexa_envelope(intent_request("AddItemIntent", product="milk"), "amzn1.ask.skill.someone-else")
    with pytest.raises(VerificationFailed, match="applicationId: not this skill's"):
        verified(skill, signer.headers(body), body)


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "body: not valid JSON"),
    (b"[1, 2]", "no 'request' object"),
    (b'{"version": "1.0", "request": "x"}', "no 'request' object"),
])
def test_bodies_that_are_not_envelopes_are_refused_before_any_crypto(skill, signer, body, reason):
    with pytest.raises(VerificationFailed, match=reason):
        verified(skill, signer.headers(body), body)


def test_a_signed_envelope_of_an_unknown_request_type_is_refused(skill, signer):
    body = orjson.dumps({"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL}}},
                         "request": {"type": "Bogus.Request", "timestamp": datetime.now(timezone.utc).isoformat()}})
    with pytest.raises(VerificationFailed, match="request: not an Alexa request envelope"):
        verified(skill, signer.headers(body), body)


def envelope_of(skill: AlexaSkill, signer: AlexaSigner, request, attributes=None):  # noqa: ANN001, ANN201
    body = alexa_envelope(request, SKILL, attributes=attributes, access_token="linked-token")
    return verified(skill, signer.headers(body), body)


STANDING = {"voicecart": SessionState(line=CartLine(request_id="r1", product_id="P1", at=0.0)).model_dump()}


@pytest.mark.parametrize("name, slots, attributes, action, words", [
    ("AddItemIntent", {"product": "bread", "quantity": None}, None, Action.resolve, "add bread"),
    ("AddItemIntent", {"product": None, "quantity": "3"}, None, Action.resolve, None),
    ("RemoveItemIntent", {"product": "yogurt"}, None, Action.resolve, "remove yogurt"),
    ("ReorderItemIntent", {"product": "coffee"}, None, Action.resolve, "reorder coffee"),
    ("FindItemIntent", {"product": "rice"}, None, Action.resolve, "do you have rice"),
    ("OtherOneIntent", {"attribute": None}, STANDING, Action.follow_up, "no, the other one"),
    ("OtherOneIntent", {"attribute": "organic"}, STANDING, Action.follow_up, "the organic one"),
    ("AMAZON.NoIntent", {}, STANDING, Action.follow_up, "no, the other one"),
    ("ChangeQuantityIntent", {"quantity": "2"}, STANDING, Action.follow_up, "make it 2"),
    ("AMAZON.YesIntent", {}, STANDING, Action.confirm, None),
    ("AMAZON.CancelIntent", {}, STANDING, Action.follow_up, "cancel that"),
    ("AMAZON.CancelIntent", {}, None, Action.end, None),
    ("AMAZON.StopIntent", {}, STANDING, Action.end, None),
    ("AMAZON.HelpIntent", {}, None, Action.help, None),
    ("AMAZON.FallbackIntent", {}, None, Action.unknown, None),
    ("OrderPizzaIntent", {}, None, Action.unknown, None),
])
def test_intents_become_turns(skill, signer, name, slots, attributes, action, words):
    turn = skill.turn(envelope_of(skill, signer, intent_request(name, **slots), attributes))
    assert (turn.action, turn.utterance) == (action, words)
    assert turn.users == ("linked-token", "amzn1.ask.account.TEST")  # the linked account first


def test_launch_and_session_ended_become_turns(skill, signer):
    now = datetime.now(timezone.utc)
    launch = skill.turn(envelope_of(skill, signer, LaunchRequest(request_id="r", timestamp=now, locale="en-GB")))
    ended = skill.turn(envelope_of(skill, signer, SessionEndedRequest(request_id="r", timestamp=now), STANDING))
    assert launch.action is Action.launch and launch.locale == "en-GB"
    assert ended.action is Action.end and ended.state == STANDING["voicecart"]


def test_the_reply_is_escaped_ssml_with_a_reprompt_only_when_it_asks(skill):
    state = SessionState(line=CartLine(request_id="r1", product_id="P1", title="M&M's <party> pack", at=1.0))
    asking = skill.response(Reply("Adding M&M's <party> pack. Is that the one you want?", state,
                                  reprompt="Should I keep M&M's in your cart?", needs_confirmation=True))
    assert asking["response"]["outputSpeech"] == {
        "type": "SSML", "ssml": "<speak>Adding M&amp;M's &lt;party&gt; pack. Is that the one you want?</speak>"}
    assert asking["response"]["reprompt"]["outputSpeech"]["ssml"] == "<speak>Should I keep M&amp;M's in your cart?</speak>"
    assert asking["response"]["shouldEndSession"] is False
    assert asking["sessionAttributes"]["voicecart"]["line"]["product_id"] == "P1"
    told = skill.response(Reply("Adding milk. Anything else?", state))
    assert "reprompt" not in told["response"]
    bye = skill.response(Reply("Okay, your cart is saved. Goodbye.", None, end_session=True))
    assert bye["response"]["shouldEndSession"] is True and bye["sessionAttributes"] == {}


def test_an_unlinked_shopper_hears_the_hint_and_gets_a_link_account_card(skill):
    reply = skill.response(Reply("Adding milk. Is that the one you want?", SessionState(hinted=True), link_hint=True))
    assert "link your account in the Alexa app" in reply["response"]["outputSpeech"]["ssml"]
    assert reply["response"]["card"] == {"type": "LinkAccount"}


def test_settings_refuse_an_enabled_skill_without_skill_id(tmp_path: Path):
    with pytest.raises(ValueError, match="skill_ids"):
        AlexaSettings(enabled=True)
    with pytest.raises(ValueError, match="timestamp_tolerance_s"):
        AlexaSettings(timestamp_tolerance_s=600)
