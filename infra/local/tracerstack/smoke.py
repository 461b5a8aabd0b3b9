"""After a deployment: both APIs answer ``GET /health`` with 200 and this release's version."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

from tracerstack.deploy import StageConfig, service_stack, stack_name
from tracerstack.release import release_version


def endpoint(stage: StageConfig, service: str) -> str:
    import boto3

    cfn = boto3.client("cloudformation", region_name=stage.region)
    stack = cfn.describe_stacks(StackName=stack_name(stage.name, service_stack(service)))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}
    return outputs["EndpointURL"].rstrip("/")


def main() -> None:
    parser = argparse.ArgumentParser(description="Check a deployed stage's APIs")
    parser.add_argument("--stage", required=True)
    stage = StageConfig.load(parser.parse_args().stage)
    expected, failures = release_version(), []
    for service in ("details", "enf"):
        url = f"{endpoint(stage, service)}/health"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except Exception as exc:
            failures.append(f"{service}: {url} failed: {exc}")
            continue
        if body.get("version") != expected:
            failures.append(f"{service}: runs {body.get('version')}, expected {expected}")
        else:
            print(f"{service}: healthy, release {expected}")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
