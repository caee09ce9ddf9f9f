"""A Python grpcio client for the status matrix (test/clients/status-matrix.test.ts).

Reads a JSON list of unary calls on stdin, makes each on one insecure channel with identity
(de)serializers (no generated stubs: the test serializes requests with its own schema), and prints
a JSON list of results: the code, details and trailing metadata as grpcio itself reports them.

Runs with Debian's python3-grpcio (/usr/bin/python3).
"""

import base64
import json
import sys
import time

import grpc


def invoke(channel, call):
    method = channel.unary_unary(
        call["path"],
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    request = base64.b64decode(call["request"])
    metadata = list((call.get("metadata") or {}).items())
    timeout = (call.get("timeoutMs") or 10_000) / 1000
    started = time.monotonic()
    elapsed = lambda: round((time.monotonic() - started) * 1000)  # noqa: E731
    try:
        response, rpc = method.with_call(request, metadata=metadata, timeout=timeout)
        return {
            "id": call["id"],
            "code": rpc.code().value[0],
            "message": rpc.details() or "",
            "response": base64.b64encode(response).decode(),
            "trailers": trailers(rpc.trailing_metadata()),
            "ms": elapsed(),
        }
    except grpc.RpcError as err:
        return {
            "id": call["id"],
            "code": err.code().value[0],
            "message": err.details() or "",
            "trailers": trailers(err.trailing_metadata()),
            "ms": elapsed(),
        }


def trailers(metadata):
    """Trailing metadata as {key: value}; binary (-bin) values base64-encoded."""
    out = {}
    for key, value in metadata or ():
        out[key] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: grpcio_client.py host:port < calls.json", file=sys.stderr)
        return 2
    calls = json.load(sys.stdin)
    with grpc.insecure_channel(sys.argv[1]) as channel:
        results = [invoke(channel, call) for call in calls]
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
