"""The floor a single status can reach: the bare webhook (signature, JSON parse) plus what a
status must do before its 200, its one statement and COMMIT through the app's own lone path
(storage.statuses_pg.record_and_commit), with no parsing into events, no checks and no blueprint.
Served by gunicorn exactly as the bare webhook and the app are."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from flask import Flask, Response

from storage.db import make_engine
from storage.status_steps import StatusRow
from storage.statuses_pg import record_and_commit
from tests.bench.bare_app import signed_body

app = Flask(__name__)
engine = make_engine(os.environ["DATABASE_URL"])


@app.post("/webhook")
def receive() -> Response:
    body = signed_body()
    if body is None:
        return Response("bad signature", 403)
    value = json.loads(body)["entry"][0]["changes"][0]["value"]
    status = value["statuses"][0]
    row = StatusRow(
        wamid=status["id"],
        status=status["status"],
        meta_timestamp=datetime.fromtimestamp(int(status["timestamp"]), UTC),
        phone_number_id=value["metadata"]["phone_number_id"],
        recipient_id=status.get("recipient_id"),
        recipient_user_id=None,
        recipient_participant_id=None,
        error_code=None,
        error_title=None,
        raw=status,
    )
    record_and_commit(engine, [row])
    return Response('{"ok":true}', 200, mimetype="application/json")
