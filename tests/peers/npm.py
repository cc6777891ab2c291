"""Install a test peer's locked npm dependencies once (``npm ci``), for every worker."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path


def npm_ci(folder: Path, package: str, error: type[Exception], what: str) -> str:
    """``npm ci`` in ``folder`` unless ``package`` is installed there (one worker at a
    time); the path of ``node``. Raises ``error`` naming ``what`` when it cannot."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise error(
            f"{what} needs Node.js >= 20 with npm on PATH (e.g. apt-get install nodejs npm)"
        )
    marker = folder / "node_modules" / package / "package.json"
    if not marker.exists():
        lock_path = Path(tempfile.gettempdir()) / f"plugpay-{folder.name}-npm-ci.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.exists():
                proc = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if proc.returncode != 0 or not marker.exists():
                    raise error(
                        f"{what}: npm ci in {folder} failed ({proc.returncode}):\n"
                        f"{proc.stdout}{proc.stderr}"
                    )
    return node
