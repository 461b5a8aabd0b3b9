"""Deployment package size per service, as built by `make package` (DESIGN §7: ≤ 10 MB zipped).

make package      # builds build/<service>/deployment.zip, then runs this
"""

from __future__ import annotations

import zipfile
from pathlib import Path

BUILD = Path(__file__).resolve().parents[1] / "build"
TARGET_MB = 10.0


def main() -> None:
    print(f"deployment package per service (target <= {TARGET_MB:.0f} MB zipped)")
    for package in sorted(BUILD.glob("*/deployment.zip")):
        size_mb = package.stat().st_size / 1_000_000
        with zipfile.ZipFile(package) as archive:
            unzipped_mb = sum(i.file_size for i in archive.infolist()) / 1_000_000
            has_boto = any(n.startswith(("boto3/", "botocore/")) for n in archive.namelist())
        verdict = "ok" if size_mb <= TARGET_MB and not has_boto else "OVER TARGET"
        note = "  (contains boto3/botocore!)" if has_boto else ""
        print(
            f"  {package.parent.name:<8} {size_mb:6.2f} MB zipped, {unzipped_mb:6.2f} MB "
            f"unzipped   {verdict}{note}"
        )


if __name__ == "__main__":
    main()
