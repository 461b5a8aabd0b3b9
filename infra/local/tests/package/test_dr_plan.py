"""Where the deployment puts the disaster-recovery stacks (docs/operations.md §8). The plan
reads the packaged services, so this runs in the package tier, after `make package`."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("stage", "dr_region"), [("prod", "ap-southeast-4"), ("dev", "")])
def test_the_dr_stacks_go_to_the_stages_dr_region_and_only_where_it_has_one(
    stage: str, dr_region: str
) -> None:
    from tracerstack import deploy

    config = deploy.StageConfig.load(stage)
    assert config.dr_region == dr_region
    lines: list[str] = []
    ctx = deploy.Context(stage=config, dry_run=True, log=lines.append)
    deploy.execute(deploy.plan(), ctx)
    text = "\n".join(lines)
    order = [line.split()[1] for line in lines if line.startswith("  stack covidtracer-")]
    if dr_region:
        assert f"covidtracer-{stage}-dr in {dr_region}" in text
        assert f"covidtracer-{stage}-dr-signing in {dr_region}" in text
        assert order.index(f"covidtracer-{stage}-dr") < order.index(f"covidtracer-{stage}-data")
        assert order.index(f"covidtracer-{stage}-data") < order.index(
            f"covidtracer-{stage}-dr-signing"
        )
        assert '"DrRegion": "ap-southeast-4"' in text
    else:
        assert f"covidtracer-{stage}-dr " not in text and "no DR region" in text
        assert '"DrRegion": ""' in text
    assert f"covidtracer-{stage}-backup in {config.region}" in text
