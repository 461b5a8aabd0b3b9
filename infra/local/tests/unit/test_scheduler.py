"""The local schedule: the ENF export runs just after each local window ends."""

from __future__ import annotations

from tracerstack import jobs
from tracerstack.scheduler import ALIGNED_DELAY_SECONDS, next_due


def test_the_enf_export_runs_just_after_each_minute_ends_whenever_the_stack_started() -> None:
    export = jobs.JOBS["enf-export"]
    for wall in (1_000_020.0, 1_000_059.5, 1_000_000.0 + ALIGNED_DELAY_SECONDS):
        due = next_due(export, 500.0, wall)
        ran_at = wall + (due - 500.0)
        assert ran_at % 60 == ALIGNED_DELAY_SECONDS
        assert 0 < due - 500.0 <= 60 + ALIGNED_DELAY_SECONDS


def test_other_jobs_run_a_period_after_the_last_run() -> None:
    feed = jobs.JOBS["events-feed"]
    assert next_due(feed, 500.0, 1_000_020.0) == 500.0 + feed.period_seconds
