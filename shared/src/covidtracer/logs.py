"""Structured JSON logs with request ids, and a guard that keeps personal data out of them.

One JSON object per line (what CloudWatch Logs Insights queries best). The request id is
bound once per invocation with ``bind(request_id=…)`` and added to every line.

Privacy rule (DESIGN §8): names, phones, emails, GLNs, codes and keys never reach a log.
Code should simply not log them; as a second line of defence the formatter drops any
``extra`` field whose name is known to carry personal data and masks email addresses and
phone numbers that slip into a message.

Hand-written rather than aws-lambda-powertools' Logger: this is ~60 lines, costs ~1 ms at
import instead of ~60 ms, and the cold-start budget is 150 ms for the whole app.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from contextvars import ContextVar
from typing import Any

PERSONAL_FIELDS = frozenset(
    {
        "email", "phone", "firstname", "middlename", "lastname", "name", "dateofbirth",
        "gln", "code", "otp", "answer", "keydata", "key_data", "keys", "exposures",
        "consentcode", "contactnotes", "note", "password", "token", "accesstoken",
        "refreshtoken", "authorization", "hash", "session", "ethnicity", "gender",
    }
)  # fmt: skip

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d -]{6,}\d")
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)


def bind(**fields: Any) -> None:
    """Attach fields (request id, route …) to every line logged by this invocation."""
    _context.set({**(_context.get() or {}), **fields})


def clear() -> None:
    _context.set(None)


def scrub(text: str) -> str:
    """Mask email addresses and phone numbers in free text."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        line.update(_context.get() or {})
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            line[key] = "[redacted]" if key.lower() in PERSONAL_FIELDS else value
        if record.exc_info and record.exc_info[0] is not None:
            # Exception messages can quote input (a ValueError on a bad field, a driver
            # error echoing a row), and so can source lines, so only the type and the code
            # locations (file, line, function) are kept.
            exc_type, _, tb = record.exc_info
            line["exception"] = {
                "type": exc_type.__name__,
                "stack": [
                    f"{frame.filename}:{frame.lineno} in {frame.name}"
                    for frame in traceback.extract_tb(tb)[-8:]
                ],
            }
        return json.dumps(line, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stdout`` is now (test runners swap and close it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure(level: str | None = None) -> None:
    """Route the root logger to stdout as JSON (Lambda ships stdout to CloudWatch), at
    ``level``, by default the ``LOG_LEVEL`` environment variable (INFO when unset).

    Apps call this at import, before their settings load, so it reads the variable itself;
    a value that is not a level means INFO here, and the settings refuse it at cold start.
    """
    chosen = (level or os.environ.get("LOG_LEVEL") or "INFO").strip().upper()
    root = logging.getLogger()
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(chosen if chosen in LEVELS else "INFO")
    # Libraries log request bodies at DEBUG; never let that through.
    for noisy in ("botocore", "boto3", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


METRIC_NAMESPACE = "CovidTracer"


def metric(name: str, value: int, *, stage: str, logger: str, message: str, **fields: Any) -> None:
    """``CovidTracer/<name>`` (dimension ``Stage``) through one embedded-metric log line:
    CloudWatch Logs turns the line into the metric, so an alarm can watch it, and no request
    waits on a PutMetricData call. ``fields`` are logged beside it (counts, never personal
    data). A closed stdout (test runners) is ignored: a metric never fails its caller."""
    now = time.time()
    line = {
        "_aws": {
            "Timestamp": int(now * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Stage"]],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }
            ],
        },
        "Stage": stage,
        name: value,
        **fields,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "level": "WARNING",
        "logger": logger,
        "message": message,
    }
    line.update(_context.get() or {})
    with contextlib.suppress(OSError, ValueError):
        write_line(json.dumps(line, separators=(",", ":"), default=str) + "\n")


# One line at a time: a threaded host (chalice local) must not interleave two lines.
_write_lock = threading.Lock()


def write_line(line: str) -> None:
    """Writes one whole line to standard output, the function's log (Lambda's runtime
    forwards each line to CloudWatch Logs as a log event): metrics and analytics events."""
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()
