"""Check a document before putting it in Parameter Store (docs/operations.md §9).

    .venv/bin/python -m tracerstack.client_documents exposure|notification FILE

Applies the service's own rules (``covidtracer.enfkeys.client_config``, what a Lambda applies
before serving it) and the phones' decoders (``tracerstack.clients``); prints every problem
and exits 1, or prints ``ok``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from covidtracer.enfkeys import client_config
from tracerstack import clients


def problems(kind: str, text: str) -> list[str]:
    try:
        document = json.loads(text)
    except ValueError as error:
        return [f"not JSON: {error}"]
    if kind == "exposure":
        found = client_config.exposure_config_problems(document)
        envelope = {"exposureConfig": text}
        decoders = (clients.ios_exposure_config, clients.android_exposure_config)
    else:
        found = client_config.notification_problems(document)
        envelope = document
        decoders = (clients.app_notification_settings,)
    for decode in decoders:
        try:
            decode(envelope)
        except clients.Refused as refused:
            found.append(f"a phone refuses it: {refused}")
    return found


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("exposure", "notification"):
        sys.exit(__doc__)
    found = problems(sys.argv[1], Path(sys.argv[2]).read_text())
    print("\n".join(found) if found else "ok")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
