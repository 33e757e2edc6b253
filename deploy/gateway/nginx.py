"""Run one gateway: start nginx in the foreground of its own session, reload it when the instances
change, stop it. The master's pid (nginx.pid in the gateway directory) plus its `-p` argument
identify it, so only this gateway is ever signalled."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from deploy.gateway.render import GatewayConfig, GatewayError, check_config, nginx_command, write_gateway
from deploy.processes import pid_matches, read_pid, spawn, stop_processes, tail


class Gateway:
    def __init__(self, config: GatewayConfig, *, cwd: Path) -> None:
        self.config = config
        self.cwd = cwd

    @property
    def url(self) -> str:
        return f"http://{self.config.listen}"

    @property
    def error_log(self) -> Path:
        return self.config.log_dir / "gateway-error.log"

    def running_pid(self) -> int | None:
        pid = read_pid(self.config.pid_path)
        if pid is not None and pid_matches(pid, [str(self.config.prefix)]):
            return pid
        return None

    def apply(self, *, timeout: float = 15.0) -> str:
        """Write and check the config, then start nginx or reload it. Returns what it did."""
        changed = write_gateway(self.config)
        check_config(self.config)
        pid = self.running_pid()
        if pid is None:
            self._start(timeout)
            return "started"
        if changed:
            os.kill(pid, signal.SIGHUP)
            return "reloaded"
        return "unchanged"

    def _start(self, timeout: float) -> None:
        self.config.pid_path.unlink(missing_ok=True)
        process = spawn(
            nginx_command(self.config), log_path=self.config.log_dir / "gateway.log", env=os.environ, cwd=self.cwd
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise GatewayError(f"nginx exited with {process.returncode}:\n{tail(self.error_log)}")
            if self._healthy():
                return
            time.sleep(0.1)
        raise GatewayError(
            f"nginx did not answer /healthz on {self.url} within {timeout:.0f}s:\n{tail(self.error_log)}"
        )

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> bool:
        """Gracefully stop this gateway's nginx (SIGQUIT lets requests in flight finish)."""
        pid = self.running_pid()
        if pid is None:
            return False
        stop_processes([pid], first=signal.SIGQUIT, grace=10.0)
        self.config.pid_path.unlink(missing_ok=True)
        return True
