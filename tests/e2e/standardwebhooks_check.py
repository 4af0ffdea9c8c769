"""Signs and verifies with the official Standard Webhooks library (PyPI `standardwebhooks`), so
shipgate's signatures are checked against the specification's own implementation.

    standardwebhooks_check.py sign SECRET MSG_ID TIMESTAMP < body      prints webhook-signature
    standardwebhooks_check.py verify SECRET MSG_ID TIMESTAMP SIGNATURE < body
                                                                       exits 0 when it verifies
"""
import sys
from datetime import datetime, timezone

from standardwebhooks import Webhook


def main() -> int:
    command, secret, msg_id, timestamp = sys.argv[1:5]
    body = sys.stdin.buffer.read().decode("utf-8")
    hook = Webhook(secret)
    if command == "sign":
        at = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
        print(hook.sign(msg_id, at, body))
        return 0
    if command == "verify":
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sys.argv[5],
        }
        try:
            hook.verify(body, headers)
        except Exception as e:  # the library's WebhookVerificationError and its causes
            print(f"not verified: {e}", file=sys.stderr)
            return 1
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
