"""Build the web client for the gateway through its own script (web/build.sh: `npm ci` when the lock
changed, `vite build` when a source is newer than web/dist), or say why it was not built."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from deploy.processes import tail


class WebBuildError(RuntimeError):
    pass


def build_web(web_dir: Path, *, log: Path) -> tuple[Path | None, str]:
    """Return (the directory the gateway should serve or None, what happened)."""
    dist = web_dir / "dist"
    last_build = dist if (dist / "index.html").exists() else None
    if not (web_dir / "package.json").exists():
        return None, "no web client in this tree"
    if shutil.which("npm") is None:
        suffix = " (serving the last build)" if last_build else ""
        return last_build, f"npm is not installed: web client not built{suffix}"
    script = web_dir / "build.sh"
    argv = ["bash", str(script)] if script.exists() else ["npm", "run", "build"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        handle.write(f"\n=== {' '.join(argv)}\n".encode())
        handle.flush()
        result = subprocess.run(argv, cwd=web_dir, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not (dist / "index.html").exists():
        raise WebBuildError(f"building the web client failed (see {log}):\n{tail(log)}")
    return dist, "web/dist is current"
