"""The baseline the intake is measured against: a bare Flask webhook that checks the signature,
parses the JSON and answers 200, storing nothing. Served by gunicorn exactly as the app is."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from flask import Flask, Response, request

app = Flask(__name__)
SECRET = os.environ["WHATSAPP_APP_SECRET"].encode()


def signed_body() -> bytes | None:
    """The request's body, if Meta's signature matches it."""
    body = request.get_data(cache=False)
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return None
    return body


@app.post("/webhook")
def receive() -> Response:
    body = signed_body()
    if body is None:
        return Response("bad signature", 403)
    json.loads(body)
    return Response('{"ok":true}', 200, mimetype="application/json")
