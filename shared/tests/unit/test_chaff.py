"""Chaff (covidtracer.chaff, http.chaff_middleware): an X-Chaff request never reaches the
view, and its answer is as large and as slow as the route's recent real answers."""

from __future__ import annotations

import json
import random

from chalice.test import Client

from covidtracer import chaff
from covidtracer.errors import Unauthorized
from covidtracer.http import (
    ApiApp,
    ChaffRoute,
    chaff_answer_padding,
    chaff_middleware,
    json_response,
)


def test_the_tracker_answers_with_a_recent_real_answers_size_and_capped_latency() -> None:
    tracker = chaff.Tracker(
        default_size=100, default_latency_ms=50, max_latency_ms=400, rng=random.Random(1)
    )
    assert tracker.plausible() == chaff.Plausible(100, 50)
    for size, latency in ((2000, 30.0), (2500, 900.0)):
        tracker.record(size, latency)
    seen = {tracker.plausible() for _ in range(50)}
    assert seen == {chaff.Plausible(2000, 30.0), chaff.Plausible(2500, 400)}


def test_the_tracker_forgets_all_but_its_last_answers() -> None:
    tracker = chaff.Tracker(default_size=1, default_latency_ms=1, capacity=2)
    for size in (10, 20, 30):
        tracker.record(size, 1.0)
    assert {tracker.plausible().size for _ in range(40)} == {20, 30}


def _app(
    calls: list[str], slept: list[float], check: object = None, tracker: chaff.Tracker | None = None
) -> ApiApp:
    app = ApiApp("chaff-test")
    tracker = tracker or chaff.Tracker(default_size=64, default_latency_ms=0)
    route = ChaffRoute(tracker, chaff_answer_padding, check)  # type: ignore[arg-type]
    app.register_middleware(chaff_middleware({"POST /upload": route}, slept.append), "http")

    @app.route("/upload", methods=["POST"])
    def upload() -> object:
        calls.append("real")
        return json_response({"padding": "x" * 1500, "revisionToken": "t" * 500})

    return app


def test_chaff_never_reaches_the_view_and_is_as_large_as_a_real_answer() -> None:
    calls: list[str] = []
    slept: list[float] = []
    with Client(_app(calls, slept)) as client:
        real = client.http.post("/upload", headers={"Content-Type": "application/json"}, body="{}")
        fake = client.http.post(
            "/upload", headers={"Content-Type": "application/json", "X-Chaff": "1"}, body="{}"
        )
    assert calls == ["real"]
    assert fake.status_code == 200 and set(json.loads(fake.body)) == {"padding"}
    assert len(fake.body) == len(real.body)


def test_chaff_still_needs_what_the_routes_check_demands() -> None:
    def check(request: object) -> None:
        raise Unauthorized()

    with Client(_app([], [], check)) as client:
        refused = client.http.post(
            "/upload", headers={"Content-Type": "application/json", "X-Chaff": "1"}, body="{}"
        )
    assert refused.status_code == 401


def test_chaff_takes_as_long_as_a_recent_real_answer() -> None:
    tracker = chaff.Tracker(default_size=64, default_latency_ms=0)
    tracker.record(1000, 250.0)
    slept: list[float] = []
    with Client(_app([], slept, tracker=tracker)) as client:
        fake = client.http.post(
            "/upload", headers={"Content-Type": "application/json", "X-Chaff": "1"}, body="{}"
        )
    assert len(fake.body) == 1000
    assert len(slept) == 1 and 0.2 < slept[0] <= 0.25
