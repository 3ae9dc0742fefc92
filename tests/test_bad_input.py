"""Hand-written bad input, beside the generated kind (test_fuzz.py): each answer is a 2xx or 4xx in the one
JSON shape, never a 5xx, and what a post says comes back only inside JSON."""

import json

import pytest
from fastapi.testclient import TestClient

from model import Predictor
from service.app import create_app
from service.schemas import Score
from service.settings import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(sklearn_model, tmp_path_factory):
    settings = Settings(model_dir=tmp_path_factory.mktemp("none"))
    with TestClient(create_app(settings, predictor=Predictor.from_pretrained(sklearn_model))) as c:
        yield c


def scored(r) -> dict:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return Score.model_validate(r.json()).model_dump()


def refused(r, status=422, error_type="validation_error") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error_type"] == error_type and body["error"], body
    return body


@pytest.mark.parametrize("text", ["", " ", "   \t\n\r ", "\u3000\u2003\xa0", "\x1c\x1f"])
def test_empty_and_blank_text(client, text):
    refused(client.post("/v1/score", json={"text": text}))


def test_long_texts(client):
    assert scored(client.post("/v1/score", json={"text": "my order is late " * 588 + "abcd"}))  # 10,000 chars
    body = refused(client.post("/v1/score", json={"text": "x" * 1_000_000}))
    assert "at most 10000 characters" in body["error"]
    body = refused(client.post("/v1/score/batch", json={"posts": [{"text": "ok"}, {"text": "é" * 1_000_000}]}))
    assert body["detail"][0]["loc"] == ["body", "posts", 1, "text"]


@pytest.mark.parametrize("raw", [b'{"text": "caf\xe9"}', b'{"text": "\xff\xfe\xfd"}', b"\x80" * 100])
def test_invalid_utf8(client, raw):
    body = refused(client.post("/v1/score", content=raw, headers=JSON))
    assert "not UTF-8" in body["error"]


def test_null_bytes(client):
    refused(client.post("/v1/score", json={"text": "a\x00b"}))
    refused(client.post("/v1/score", content=b'{"text": "\\u0000"}', headers=JSON))
    # Elsewhere a null byte is just a character, and JSON escapes it on the way back.
    r = client.post("/v1/score", json={"text": "hi", "id": "a\x00b"})
    assert scored(r)["id"] == "a\x00b" and b"\\u0000" in r.content


@pytest.mark.parametrize("text", [
    "\u200b\u200c\u200d\ufeff",                            # zero-width only
    "my\u200border\u200dis\u200clate",                     # zero-width inside words
    "\u202eetal si redro ym\u202c",                        # right-to-left override
    "طلبي متأخر ولا أحد يرد",                               # Arabic, right to left
    "ההזמנה שלי לא הגיעה",                                  # Hebrew
    "😡😡😡", "🏳️‍🌈👨‍👩‍👧‍👦", "🔥" * 2500,                    # emoji only (the last: 10,000 bytes of UTF-8)
    "\U0001d573\U0001d586\U0001d588",                      # astral-plane letters
])
def test_unusual_characters_are_scored(client, text):
    r = client.post("/v1/score", json={"id": text[:128], "text": text})
    assert scored(r)["id"] == text[:128]


def test_html_and_script_come_back_as_json(client):
    post = {"id": "<img src=x onerror=alert(1)>", "text": "<script>alert('x')</script><b>my order</b> is late",
            "channel": "</script><script>alert(2)</script>"}
    r = client.post("/v1/score", json=post)
    assert scored(r)["id"] == post["id"]
    assert r.headers["x-content-type-options"] == "nosniff"  # no browser sniffs it into HTML
    assert r.content.startswith(b"{") and b"alert(2)" not in r.content  # the channel is not echoed
    r = client.post("/v1/score", json={"text": "<script>" * 2000})
    refused(r)
    assert "<script>" not in r.text  # errors name the field, they do not repeat the input


@pytest.mark.parametrize("depth", [50, 900, 100_000])
def test_deeply_nested_json(client, depth):
    raw = b'{"text": "hi", "author": ' + b"[" * depth + b"]" * depth + b"}"
    refused(client.post("/v1/score", content=raw, headers=JSON))
    raw = b'{"text": "hi", "ignored": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    r = client.post("/v1/score", content=raw, headers=JSON)
    assert r.status_code in (200, 422) and r.json()  # an unknown field may nest; too deep is 422
    refused(client.post("/v1/score", content=b"[" * depth, headers=JSON))


@pytest.mark.parametrize("content_type,raw", [
    ("text/plain", b'{"text": "hi"}'),
    (None, b'{"text": "hi"}'),
    ("application/x-www-form-urlencoded", b"text=hi"),
    ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--b--\r\n'),
    ("application/xml", b"<post><text>hi</text></post>"),
])
def test_wrong_content_types(client, content_type, raw):
    headers = {"content-type": content_type} if content_type else {}
    body = refused(client.post("/v1/score", content=raw, headers=headers), 415, "unsupported_media_type")
    assert "application/json" in body["error"]
    refused(client.post("/v1/admin/reload", content=raw, headers=headers), 415, "unsupported_media_type")


@pytest.mark.parametrize("post,where", [
    ({"text": 5}, "body.text"),
    ({"text": 1.5}, "body.text"),
    ({"text": True}, "body.text"),
    ({"text": ["my order"]}, "body.text"),
    ({"text": {"en": "my order"}}, "body.text"),
    ({"text": None}, "body.text"),
    ({"text": "hi", "id": 42}, "body.id"),
    ({"text": "hi", "channel": 7}, "body.channel"),
    ({"text": "hi", "author": {"followers": "1200"}}, "body.author.followers"),
    ({"text": "hi", "author": {"followers": True}}, "body.author.followers"),
    ({"text": "hi", "author": {"followers": 1.5}}, "body.author.followers"),
    ({"text": "hi", "author": {"verified": "yes"}}, "body.author.verified"),
    ({"text": "hi", "engagement": {"shares": "many"}}, "body.engagement.shares"),
    ({"text": "hi", "created_at": 1764064800}, "body.created_at"),
    ({"text": "hi", "created_at": "yesterday"}, "body.created_at"),
    ({"text": "hi", "created_at": "0"}, "body.created_at"),  # pydantic alone reads it as Unix time
    ({"text": "hi", "author": "famous"}, "body.author"),
])
def test_wrong_types(client, post, where):
    assert where in refused(client.post("/v1/score", json=post))["error"]


def test_integral_floats_are_counts(client):
    # JSON Schema's integer includes 1200.0; some JSON writers send counts that way.
    assert scored(client.post("/v1/score", json={"text": "hi", "author": {"followers": 1200.0}}))


@pytest.mark.parametrize("raw", [b"", b"null", b"[]", b'"text"', b"42", b'{"text": ', b'{"text": "hi"} x',
                                 b'{"text": "hi", "author": {"followers": NaN}}',
                                 b'{"text": "hi", "author": {"followers": 1' + b"0" * 5000 + b"}}"])
def test_malformed_bodies(client, raw):
    refused(client.post("/v1/score", content=raw, headers=JSON))


@pytest.mark.parametrize("batch", [{"posts": "hi"}, {"posts": [1, 2]}, {"posts": [{"text": "ok"}, None]},
                                   {"posts": {"text": "hi"}}, {"post": [{"text": "hi"}]}])
def test_bad_batches(client, batch):
    refused(client.post("/v1/score/batch", json=batch))


def test_every_error_has_the_one_shape(client):
    for r in [client.post("/v1/score", json={}), client.get("/v1/nope"), client.put("/v1/score", json={}),
              client.post("/v1/score/batch", json={"posts": [{"text": "hi"}] * 513})]:
        assert set(r.json()) <= {"error", "error_type", "detail"} and r.status_code in (404, 405, 413, 422)
        json.dumps(r.json())
