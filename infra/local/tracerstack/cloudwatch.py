"""The local stand-in for what Lambda and CloudWatch Logs do with a function's output.

In AWS, Lambda sends each line a function writes to stdout to the function's log group, and
the log group's subscription filter (declared by the packaged templates) hands the lines that
match its pattern to the service-events Firehose stream. Locally the services run as
processes whose output goes to ``.local/logs/<name>.log`` (or, for a job, through
``jobs.run``); this module puts those lines into log groups of the same names in moto's
CloudWatch Logs, where a subscription filter with the templates' pattern and destination
delivers them to moto's Firehose and so to the analytics bucket. moto delivers every log
event to a subscription whatever its pattern; ``awsapis`` applies the pattern as CloudWatch
Logs does (``matches``).

    python -m tracerstack.cloudwatch --follow details.log=/aws/lambda/… [--follow …]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from covidtracer.analytics.model import LOG_FILTER_PATTERN

POLL_SECONDS = 0.3
SUBSCRIPTION = "analytics-events"
# Events a PutLogEvents call (at most 10,000 events or 1 MiB): the local services' lines
# are a few hundred bytes, so 500 stay far inside both.
BATCH_EVENTS = 500


def log_group(service: str, stage: str, function: str = "") -> str:
    """Lambda's log group for a function named as the packaged templates name it."""
    return f"/aws/lambda/covidtracer-{service}-{stage}{'-' + function if function else ''}"


def subscribe(logs: Any, group: str, outputs: dict[str, str]) -> None:
    """The log group with the templates' subscription filter (package.py), made if missing."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.put_subscription_filter(
        logGroupName=group,
        filterName=SUBSCRIPTION,
        filterPattern=LOG_FILTER_PATTERN,
        destinationArn=outputs["ServiceEventsStreamArn"],
        roleArn=outputs["ServiceEventsSubscriptionRoleArn"],
    )


class Shipper:
    """Puts lines into one log group, in a log stream named as Lambda names its streams."""

    def __init__(self, logs: Any, group: str) -> None:
        self._logs = logs
        self.group = group
        self.stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._created = False

    def ship(self, lines: Iterable[str]) -> int:
        events = [
            {"timestamp": int(time.time() * 1000), "message": line.rstrip("\r\n")}
            for line in lines
            if line.strip()
        ]
        if not events:
            return 0
        if not self._created:
            self._logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
            self._created = True
        for batch in itertools.batched(events, BATCH_EVENTS, strict=False):
            self._logs.put_log_events(
                logGroupName=self.group, logStreamName=self.stream, logEvents=list(batch)
            )
        return len(events)


def follow(files: dict[Path, Shipper], *, poll: float = POLL_SECONDS) -> None:
    """Ships every line appended to each file from now on (what is there already belongs to
    an earlier run of the stack, whose moto is gone), whole lines only, for ever."""
    offsets = {path: path.stat().st_size if path.exists() else 0 for path in files}
    pending = dict.fromkeys(files, b"")
    while True:
        for path, shipper in files.items():
            if not path.exists():
                continue
            with path.open("rb") as handle:
                handle.seek(offsets[path])
                data = handle.read()
            if not data:
                continue
            offsets[path] += len(data)
            text, _, rest = (pending[path] + data).rpartition(b"\n")
            pending[path] = rest
            if text:
                shipper.ship(text.decode("utf-8", errors="replace").split("\n"))
        time.sleep(poll)


# ---------------------------------------------------------------------------- filter patterns

_CONDITION = re.compile(
    r"""\(?\s*\$\.(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>!=|=)\s*
        (?:"(?P<text>[^"]*)"|(?P<bare>[^\s()&|]+))\s*\)?""",
    re.VERBOSE,
)


def matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs' ``pattern`` selects ``message``, for the patterns the local
    stack needs: empty (everything) and JSON patterns joining ``$.field = value`` (or ``!=``;
    a number, a quoted or a bare string, ``*`` for any value) with ``&&``. Raises
    ``ValueError`` for any other pattern rather than guess."""
    pattern = pattern.strip()
    if not pattern:
        return True
    if not (pattern.startswith("{") and pattern.endswith("}")):
        raise ValueError(f"filter pattern not supported locally: {pattern!r}")
    conditions = [c.strip() for c in pattern[1:-1].split("&&")]
    parsed = [_CONDITION.fullmatch(c) for c in conditions]
    if not all(parsed):
        raise ValueError(f"filter pattern not supported locally: {pattern!r}")
    try:
        document = json.loads(message)
    except ValueError:
        return False  # a JSON pattern never selects a line that is not JSON
    return all(_holds(m, document) for m in parsed if m is not None)


def _holds(condition: re.Match[str], document: Any) -> bool:
    value: Any = document
    for part in condition["path"].split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    wanted = condition["text"] if condition["text"] is not None else condition["bare"]
    if wanted == "*":
        equal = True
    elif (
        condition["text"] is None
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        try:
            equal = float(wanted) == float(value)
        except ValueError:
            equal = False
    else:
        equal = isinstance(value, str) and value == wanted
    return equal if condition["op"] == "=" else not equal


def main(argv: Sequence[str] | None = None) -> None:
    from tracerstack.bootstrap import admin_client

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--region", default="ap-southeast-2")
    parser.add_argument("--follow", action="append", default=[], metavar="FILE=LOG_GROUP")
    args = parser.parse_args(argv)
    logs = admin_client(args.aws_endpoint, "logs", args.region)
    files = {}
    for pair in args.follow:
        file, _, group = pair.partition("=")
        files[Path(file)] = Shipper(logs, group)
    follow(files)


if __name__ == "__main__":
    main()
