"""SnapStart: warm-ups only in a snapshot init, the runtime hooks registered, and nothing an
environment must own survives the snapshot (AWS's "handling uniqueness")."""

from __future__ import annotations

import random
import sys
import types

import pytest
import snapshot_restore_py

from covidtracer import aws, settings, snapstart

CALLS: list[str] = []


def warm() -> None:
    CALLS.append("warm")


def broken() -> None:
    raise RuntimeError("settings are invalid")


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda's registries, empty, and the module's record of having registered."""
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", [])
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", [])
    monkeypatch.setattr(snapstart, "_hooks_registered", False)
    CALLS.clear()


def test_outside_a_snapshot_init_nothing_is_warmed_but_the_hooks_are_registered(
    hooks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    snapstart.prepare(f"{__name__}:warm", imports=("xml.dom.minidom",))
    assert CALLS == []
    assert [f for f, _, _ in snapshot_restore_py.get_before_snapshot()] == [
        snapstart.before_snapshot
    ]
    assert [f for f, _, _ in snapshot_restore_py.get_after_restore()] == [snapstart.after_restore]
    snapstart.prepare()  # a second app module: registered once
    assert len(snapshot_restore_py.get_after_restore()) == 1


def test_in_a_snapshot_init_the_warmups_run_and_one_that_fails_is_left_to_the_request(
    hooks: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.delitem(sys.modules, "xml.dom.minidom", raising=False)
    snapstart.prepare(f"{__name__}:broken", f"{__name__}:warm", imports=("xml.dom.minidom",))
    assert CALLS == ["warm"]
    assert "xml.dom.minidom" in sys.modules
    assert "snapstart warm-up left to the first request" in caplog.messages


def test_the_aws_clients_made_at_init_do_not_keep_their_credentials_past_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSNAPSHOT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "at-init")
    settings.reset()
    aws.reset()
    before = aws.client("s3")
    assert before._request_signer._credentials.access_key == "AKIDSNAPSHOT"
    snapstart.before_snapshot()
    # A restored environment has credentials of its own (Lambda's, at restore).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDRESTORED")
    after = aws.client("s3")
    assert after is not before
    assert after._request_signer._credentials.access_key == "AKIDRESTORED"
    aws.reset()


def _restored_draw(snapshot: object, restore: bool) -> float:
    """An environment restored from ``snapshot`` (the generator's state in the snapshotted
    memory: Firecracker restores memory as it was, unlike ``os.fork``, after which Python
    reseeds ``random`` itself)."""
    random.setstate(snapshot)  # type: ignore[arg-type]
    if restore:
        snapstart.after_restore()
    return random.random()


def test_environments_restored_from_one_snapshot_draw_different_random_numbers() -> None:
    random.seed(2021)
    snapshot = random.getstate()
    assert _restored_draw(snapshot, restore=False) == _restored_draw(snapshot, restore=False)
    assert _restored_draw(snapshot, restore=True) != _restored_draw(snapshot, restore=True)


def test_the_hooks_forget_only_what_the_app_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[str] = []
    for name in ("covidtracer.db", "covidtracer.dynamo"):
        forget = lambda name=name: forgotten.append(name)  # noqa: E731
        fake = types.SimpleNamespace(forget_credentials=forget, close=forget)
        monkeypatch.setitem(sys.modules, name, fake)
    monkeypatch.delitem(sys.modules, "covidtracer.dynamo")
    snapstart.before_snapshot()
    assert forgotten == ["covidtracer.db"]
