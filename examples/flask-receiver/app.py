"""A webhook endpoint for jobhooks' job events, with Flask and the standard library only.

Verifies the Standard Webhooks signature on the raw body, answers 2xx at once, processes
asynchronously, and treats a repeated webhook-id as already handled (Svix retries until it sees a
2xx, so a delivery can arrive twice).

    WEBHOOK_SECRET=whsec_... PORT=5000 /usr/bin/python3 app.py
"""

import base64
import binascii
import collections
import datetime
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time

from flask import Flask, jsonify, request

# Standard Webhooks: a timestamp further than this from now is refused, so an old delivery captured
# on the way cannot be replayed.
TOLERANCE_SECONDS = 5 * 60
SEEN_LIMIT = 10_000


class InvalidSignature(Exception):
    pass


def log(**fields):
    """One JSON line per event on stdout, so the log is easy to search and to parse."""
    line = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(), **fields}
    print(json.dumps(line), flush=True)


def signing_key(secret):
    # The secret is "whsec_" followed by the base64 of the key bytes.
    encoded = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        sys.exit("WEBHOOK_SECRET is not a whsec_… secret: copy it from the portal")


def verify(key, headers, body):
    """Checks a delivery as Standard Webhooks defines it; returns the parsed payload or raises."""
    msg_id = headers.get("webhook-id") or headers.get("svix-id")
    timestamp = headers.get("webhook-timestamp") or headers.get("svix-timestamp")
    signatures = headers.get("webhook-signature") or headers.get("svix-signature")
    if not (msg_id and timestamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number") from None
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise InvalidSignature("webhook-timestamp is more than 5 minutes off")
    # Signed content: id, timestamp and the exact body bytes, joined by dots.
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # Several space-separated signatures during a secret rotation: any v1 match is enough.
    # compare_digest takes the same time wherever the strings differ, so timing reveals nothing.
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return json.loads(body)
    raise InvalidSignature("no signature matches")


class SeenIds:
    """Recently accepted webhook ids. In memory for the example; a real service keeps them where its
    processing commits (a unique key in its database), so a restart forgets nothing."""

    def __init__(self, limit):
        self._ids = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def first_time(self, webhook_id):
        with self._lock:
            if webhook_id in self._ids:
                return False
            self._ids[webhook_id] = True
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)
            return True


def process(webhook_id, event):
    """The slow part (database writes, emails…) runs here, after the answer was sent."""
    data = event.get("data", {})
    log(level="info", msg="processed", webhook_id=webhook_id, type=event.get("type"),
        job_id=data.get("job_id"), status=data.get("status"))


def worker(jobs):
    while True:
        webhook_id, event = jobs.get()
        try:
            process(webhook_id, event)
        except Exception as err:  # one bad event must not stop the worker
            log(level="error", msg="processing failed", webhook_id=webhook_id, err=str(err))


def create_app(secret):
    key = signing_key(secret)
    seen = SeenIds(SEEN_LIMIT)
    jobs = queue.Queue()
    threading.Thread(target=worker, args=(jobs,), daemon=True).start()
    app = Flask(__name__)

    @app.post("/webhook")
    def receive():
        # The raw bytes, before any JSON parsing: the signature covers exactly what was sent.
        body = request.get_data(cache=False)
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            event = verify(key, headers, body)
        except (InvalidSignature, ValueError) as err:
            log(level="warn", msg="rejected", reason=str(err))
            return jsonify(error="invalid signature"), 400
        webhook_id = headers.get("webhook-id") or headers.get("svix-id")
        if not seen.first_time(webhook_id):
            log(level="info", msg="duplicate", webhook_id=webhook_id)
            return jsonify(received=True, duplicate=True), 200
        jobs.put((webhook_id, event))
        return jsonify(received=True), 200

    return app


if __name__ == "__main__":
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret and sys.stdin.isatty():
        # Pasted at a prompt, so the command works as pasted from the README.
        secret = input("Paste the endpoint's signing secret (whsec_…, from the portal): ").strip()
    if not secret:
        sys.exit("WEBHOOK_SECRET is required: the endpoint's signing secret (whsec_…) from the portal")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    log(level="info", msg="listening", url=f"http://{host}:{port}/webhook")
    create_app(secret).run(host=host, port=port)
