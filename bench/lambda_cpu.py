"""What a bench's CPU time becomes on Lambda, whose CPU share follows the memory setting:
"At 1,769 MB, a function has the equivalent of one vCPU"
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), less below it and
proportionally more above it (up to 6 vCPUs at 10,240 MB)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAMBDA_MB_PER_VCPU = 1_769
STAGES = ("dev", "prod")


def function_memory_mb(service: str, function: str) -> dict[str, int]:
    """``function``'s memory per stage (``services/<service>/.chalice/config.json``): its
    own size in the release stage, else the stage's."""
    config = json.loads((REPO / "services" / service / ".chalice" / "config.json").read_text())
    own = config["stages"]["release"]["lambda_functions"].get(function, {})
    return {
        stage: int(own.get("lambda_memory_size", config["stages"][stage]["lambda_memory_size"]))
        for stage in STAGES
    }


def vcpus(memory_mb: int) -> float:
    return memory_mb / LAMBDA_MB_PER_VCPU


def on_lambda(cpu_seconds: float, memory: dict[str, int], threads: int = 1) -> str:
    """ "dev (512 MB) ~3.4 s, …": ``cpu_seconds`` of this process's CPU at each stage's share,
    work spread over at most ``threads`` busy threads (a floor: perfect overlap)."""
    return ", ".join(
        f"{stage} ({mb:,} MB, {vcpus(mb):.2f} vCPU) ~{cpu_seconds / min(vcpus(mb), threads):.2f} s"
        for stage, mb in memory.items()
    )
