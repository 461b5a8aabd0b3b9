from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from covidtracer import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("covidtracer.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logs.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_json_with_the_bound_request_id(captured: io.StringIO) -> None:
    logs.bind(request_id="req-1")
    logging.getLogger("covidtracer.test").info("exported", extra={"keys_count": 14})
    (line,) = _lines(captured)
    assert line["request_id"] == "req-1"
    assert line["message"] == "exported"
    assert line["keys_count"] == 14
    assert line["level"] == "INFO"


@pytest.mark.parametrize("field", ["email", "phone", "firstName", "code", "gln", "keyData"])
def test_personal_fields_are_redacted(captured: io.StringIO, field: str) -> None:
    logging.getLogger("covidtracer.test").info("x", extra={field: "aroha@example.nz +64211234567"})
    raw = captured.getvalue()
    assert "aroha" not in raw and "+64211234567" not in raw
    assert _lines(captured)[0][field] == "[redacted]"


def test_emails_and_phones_in_messages_are_masked(captured: io.StringIO) -> None:
    logging.getLogger("covidtracer.test").warning(
        "sent to aroha.smith@example.nz / +64 21 012 3456"
    )
    message = _lines(captured)[0]["message"]
    assert message == "sent to [email] / [phone]"


def test_exception_messages_are_dropped_but_their_type_and_place_kept(
    captured: io.StringIO,
) -> None:
    try:
        raise ValueError("Aroha Smith's phone is bad")
    except ValueError:
        logging.getLogger("covidtracer.test").exception("failed")
    line = _lines(captured)[0]
    assert "Aroha" not in captured.getvalue()
    assert line["exception"]["type"] == "ValueError"  # type: ignore[index]
    assert any("test_logs.py" in frame for frame in line["exception"]["stack"])  # type: ignore[index]


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("environ", "level"),
    [(None, logging.INFO), ("WARNING", logging.WARNING), ("debug", logging.DEBUG),
     ("chatty", logging.INFO)],
)  # fmt: skip
def test_configure_applies_the_log_level_from_the_environment(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, environ: str | None, level: int
) -> None:
    if environ is None:
        monkeypatch.delenv("LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("LOG_LEVEL", environ)
    logs.configure()
    assert logging.getLogger().level == level
    assert logging.getLogger("covidtracer.anything").getEffectiveLevel() == level


def test_at_warning_info_lines_are_not_written(
    root_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    logs.configure()
    log = logging.getLogger("covidtracer.request")
    log.info("request served")
    log.warning("dependency slow")
    assert [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()] == [
        "dependency slow"
    ]
