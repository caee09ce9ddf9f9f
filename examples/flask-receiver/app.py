"""A webhook endpoint for jobhooks' job events, with Flask and the standard library only.

Verifies the Standard Webhooks signature on the raw body, answers 2xx at once, processes
asynchronously, treats a repeated webhook-id as already handled (Svix retries until it sees a 2xx,
so a delivery can arrive twice), and ignores an event whose data.revision is not greater than the
last one kept for its job (a retried delivery can arrive after a newer event of the same job).

    WEBHOOK_SECRET=whsec_... PORT=5000 /usr/bin/python3 app.py

The secret comes from WEBHOOK_SECRET, else from the file WEBHOOK_SECRET_FILE names, else from stdin:
asked for on a terminal, the first line when piped.
"""

import base64
import binascii
import collections
import datetime
import errno
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
REVISIONS_LIMIT = 10_000

# What every receiver says where a secret is needed; the same words in the Express example.
SECRET_SHAPE = ("a signing secret looks like whsec_ followed by base64 "
                "(e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw); the portal shows the endpoint's: "
                "\"Reveal secret\", then \"Copy\"")
MISMATCH_HINT = ("no signature matches this receiver's secret: check that it is the secret of the "
                 "endpoint that sends here (the portal shows it: \"Reveal secret\")")


class InvalidSignature(Exception):
    def __init__(self, reason, hint=None):
        super().__init__(reason)
        self.hint = hint


def log(**fields):
    """One JSON line per event on stdout, so the log is easy to search and to parse."""
    line = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(), **fields}
    print(json.dumps(line), flush=True)


def refuse(reason):
    """Exits with one line on stderr: the reason and what to do, never a traceback."""
    print(reason, file=sys.stderr, flush=True)
    sys.exit(2)


def load_secret():
    """The secret and where it came from: the environment, a file, or stdin."""
    if os.environ.get("WEBHOOK_SECRET"):
        return os.environ["WEBHOOK_SECRET"], "WEBHOOK_SECRET"
    path = os.environ.get("WEBHOOK_SECRET_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), f"WEBHOOK_SECRET_FILE ({path})"
        except OSError as err:
            refuse(f"cannot read WEBHOOK_SECRET_FILE {path} ({errno.errorcode.get(err.errno, err.errno)})")
    if sys.stdin.isatty():
        return input("Paste the endpoint's signing secret (whsec_…, from the portal): "), "stdin"
    return sys.stdin.readline(), "stdin"


def signing_key(secret, source="WEBHOOK_SECRET"):
    """The key bytes: the secret is "whsec_" followed by their base64."""
    secret = secret.strip()
    if not secret:
        refuse("no signing secret: set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE, or paste it when asked; "
               + SECRET_SHAPE)
    key = b""
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error:
            pass
    # The secret itself is never echoed: it may be nearly right, and logs outlive terminals.
    if len(key) < 24:
        refuse(f"the secret from {source} is not a signing secret: {SECRET_SHAPE}")
    return key


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
    raise InvalidSignature("no signature matches", MISMATCH_HINT)


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


class LatestRevisions:
    """The last revision kept per job. In memory for the example; in production it is a column of
    your job table, and keeping an event is one conditional write in the transaction that stores it:
    UPDATE jobs SET status = %s, revision = %s WHERE id = %s AND revision < %s (no row changed: the
    event is older news, ignore it)."""

    def __init__(self, limit):
        self._revisions = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def stale_against(self, event):
        """The revision kept for the event's job when the event's is not greater (older news, or a
        retry of one already kept); otherwise the event's becomes the job's and None is returned."""
        data = event.get("data") if isinstance(event, dict) else None
        job = data.get("job_id") if isinstance(data, dict) else None
        revision = data.get("revision") if isinstance(data, dict) else None
        # A payload without a revision (sent before jobhooks had it) has nothing to compare.
        if not isinstance(job, str) or not isinstance(revision, int) or isinstance(revision, bool):
            return None
        # One lock around compare-and-keep: Flask answers deliveries on several threads at once.
        with self._lock:
            last = self._revisions.get(job)
            if last is not None and revision <= last:
                return last
            self._revisions.pop(job, None)
            self._revisions[job] = revision
            if len(self._revisions) > self._limit:
                self._revisions.popitem(last=False)
            return None


def process(webhook_id, event):
    """The slow part (database writes, emails…) runs here, after the answer was sent."""
    data = event.get("data", {})
    log(level="info", msg="processed", webhook_id=webhook_id, type=event.get("type"),
        job_id=data.get("job_id"), status=data.get("status"), revision=data.get("revision"))


def worker(jobs):
    while True:
        webhook_id, event = jobs.get()
        try:
            process(webhook_id, event)
        except Exception as err:  # one bad event must not stop the worker
            log(level="error", msg="processing failed", webhook_id=webhook_id, err=str(err))


def create_app(secret, source="WEBHOOK_SECRET"):
    key = signing_key(secret, source)
    seen = SeenIds(SEEN_LIMIT)
    revisions = LatestRevisions(REVISIONS_LIMIT)
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
            hint = getattr(err, "hint", None)
            log(level="warn", msg="rejected", reason=str(err), **({"hint": hint} if hint else {}))
            return jsonify(error="invalid signature"), 400
        webhook_id = headers.get("webhook-id") or headers.get("svix-id")
        if not seen.first_time(webhook_id):
            log(level="info", msg="duplicate", webhook_id=webhook_id)
            return jsonify(received=True, duplicate=True), 200
        kept = revisions.stale_against(event)
        if kept is not None:
            # Answered 2xx all the same: an error would only make Svix send the old news again.
            data = event.get("data", {})
            log(level="info", msg="stale", webhook_id=webhook_id, type=event.get("type"),
                job_id=data.get("job_id"), revision=data.get("revision"), kept_revision=kept)
            return jsonify(received=True, stale=True), 200
        jobs.put((webhook_id, event))
        return jsonify(received=True), 200

    return app


if __name__ == "__main__":
    # Pasted at a prompt (or piped), so the command works as pasted from the README.
    secret, source = load_secret()
    app = create_app(secret, source)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    log(level="info", msg="listening", url=f"http://{host}:{port}/webhook")
    app.run(host=host, port=port)
