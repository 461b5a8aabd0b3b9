"""The local stack: the whole backend on one machine with no AWS account (DESIGN §5)."""

from pathlib import Path

# infra/local/tracerstack -> repository root
REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = REPO_ROOT / "infra" / "templates"
SERVICES = REPO_ROOT / "services"
