"""Broker outages for fault tests. By default the real thing (`rabbitmqctl stop_app`/`start_app`);
with FAULT_MODE=proxy, a TCP proxy in front of RabbitMQ is cut instead, which takes the broker away
from this test only (for development on a machine other test runs share)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from urllib.parse import urlparse, urlunparse

from shared.testing.proxy import TcpProxy


class BrokerOutage:
    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.mode = os.environ.get("FAULT_MODE", "rabbitmqctl" if shutil.which("rabbitmqctl") else "proxy")
        self.proxy: TcpProxy | None = None
        self.outages = 0

    async def __aenter__(self) -> BrokerOutage:
        if self.mode == "proxy":
            parsed = urlparse(self.amqp_url)
            self.proxy = await TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5672).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.start()
        if self.proxy is not None:
            await self.proxy.stop()

    @property
    def url(self) -> str:
        """The AMQP URL clients under test should use."""
        if self.proxy is None:
            return self.amqp_url
        parsed = urlparse(self.amqp_url)
        netloc = f"{parsed.username}:{parsed.password}@127.0.0.1:{self.proxy.port}"
        return urlunparse(parsed._replace(netloc=netloc))

    async def stop(self) -> None:
        self.outages += 1
        if self.proxy is not None:
            self.proxy.cut()
            return
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "stop_app"], check=True, timeout=60)

    async def start(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
            return
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        await asyncio.to_thread(
            subprocess.run, ["rabbitmqctl", "-q", "await_startup", "--timeout", "60"], check=True, timeout=90
        )
