"""Eka's Python SDK (eka-webhook-sdk, installed in a throwaway venv by `make bench`), measured
the way our benchmark measures us. Prints one JSON line.

  verify <payload file> <header> <key>     calls/s of json.loads + verify_signature (its path)
  handle <fake url> <client id> <secret> <key> <n>   latency of handle_request, enriched

The SDK hard-wires https://api.eka.care: for `handle` it is pointed at the fake Eka API by
replacing EkaCareClient inside eka_webhook_sdk.eka_api with a subclass passing base_url (a
monkeypatch in this process; nothing in the venv is edited).
"""
import json
import statistics
import sys
import time


def verify(path, header, key):
    from eka_webhook_sdk.signature import verify_signature

    body = open(path, encoding="utf-8").read()
    assert verify_signature(json.loads(body), header, key).valid
    n, best = 20000, 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            verify_signature(json.loads(body), header, key)
        best = max(best, n / (time.perf_counter() - start))
    print(json.dumps({"calls_per_s": best}))


def handle(base_url, client_id, secret, key, n):
    import hmac, hashlib
    import ekacare
    import eka_webhook_sdk.eka_api as api
    from eka_webhook_sdk import WebhookSDK

    class PointedClient(ekacare.EkaCareClient):
        def __init__(self, *args, **kwargs):
            kwargs["base_url"] = base_url
            super().__init__(*args, **kwargs)

    api.EkaCareClient = PointedClient
    sdk = WebhookSDK(client_id=client_id, client_secret=secret, signing_key=key)
    latencies = []
    for i in range(int(n) + 1):
        t = str(int(time.time()))
        payload = {"event": "appointment.created", "data": {"appointment_id": f"py-{i}"}}
        body = json.dumps(payload, separators=(",", ":"))
        mac = hmac.new(key.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        start = time.perf_counter()
        result = sdk.handle_request(body, {"eka-webhook-signature": f"t={t},v1={mac}"})
        elapsed = (time.perf_counter() - start) * 1000
        assert result.status == 200, (result.status, result.body)
        if i > 0:  # the first call also logs in
            latencies.append(elapsed)
    print(json.dumps({"median_ms": statistics.median(latencies), "max_ms": max(latencies)}))


if __name__ == "__main__":
    {"verify": verify, "handle": handle}[sys.argv[1]](*sys.argv[2:])
