"""Local processes the platform starts: launch detached with a log file, recognise them again later
by pid file and command line, and stop exactly those (never anything matched by name)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers bind (uvicorn, nginx): a port with only TIME_WAIT leftovers counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_port_free(port: int, *, timeout: float = 10.0, host: str = "127.0.0.1") -> bool:
    """True once `port` can be bound. Right after a server was killed its port stays taken for a few
    milliseconds while the kernel tears down the connections it had: a restart must not fail on that."""
    deadline = time.monotonic() + timeout
    while not port_free(port, host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ephemeral_port_floor() -> int:
    """Where the kernel starts picking local ports for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def find_free_base_port(offsets: Sequence[int], *, low: int = 20_000, high: int | None = None, tries: int = 200) -> int:
    """A base port (a multiple of 1000) such that base + every offset is free right now. Blocks stay
    below the ephemeral range: there an outgoing connection may take the port of an instance that a
    fault test killed before it is restarted."""
    top = high if high is not None else ephemeral_port_floor() - max(offsets, default=0) - 1
    rng = random.SystemRandom()
    for _ in range(tries):
        base = rng.randrange(low, max(low + 1, top), 1000)
        if all(port_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError("no free block of ports found")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_alive(pid: int) -> bool:
    """True for a live process (a zombie awaiting its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def pid_matches(pid: int, markers: Sequence[str]) -> bool:
    """Is `pid` alive and is its command line the one we started (every marker appears as whole words)?

    Whole words of the joined line, because nginx rewrites its argv into one string."""
    line = f" {' '.join(cmdline(pid))} "
    return pid_alive(pid) and bool(line.strip()) and all(f" {marker} " in line for marker in markers)


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def spawn(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session (so it outlives us and we can signal its whole group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_processes(pids: Sequence[int], *, first: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> list[int]:
    """Signal each process group, wait for all to exit, SIGKILL what is left. Returns the pids killed."""
    for pid in pids:
        _signal_group(pid, first)
    deadline = time.monotonic() + grace
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        _reap(remaining)
        remaining = [pid for pid in remaining if pid_alive(pid)]
        if remaining:
            time.sleep(0.1)
    for pid in remaining:
        _signal_group(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while any(pid_alive(pid) for pid in remaining) and time.monotonic() < end:
        _reap(remaining)
        time.sleep(0.05)
    return remaining


def _reap(pids: Sequence[int]) -> None:
    """Collect exit statuses of our own children so they do not linger as zombies."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64_000))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
