"""Remove what a test run left on the shared servers: its databases and its bus namespace."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import aio_pika
import asyncpg

from shared.testing.servers import TestServers


async def drop_run_databases(servers: TestServers, run_id: str) -> None:
    dsn = servers.pg_base.replace("+asyncpg", "") + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"t\\_{run_id}\\_%")
        for row in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


def _listed(kind: str) -> list[str]:
    """Names from `rabbitmqctl list_queues|list_exchanges` (only for a broker on this machine)."""
    if not shutil.which("rabbitmqctl"):
        return []
    with contextlib.suppress(Exception):
        result = subprocess.run(
            ["rabbitmqctl", "-q", f"list_{kind}", "name", "--no-table-headers"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout.split()
    return []


async def delete_namespace(amqp_url: str, namespace: str) -> None:
    """Best effort: list queues once (rabbitmqctl, local broker), delete them and the exchange over AMQP."""
    queues = [n for n in _listed("queues") if n.startswith(f"{namespace}.")]
    exchanges = [n for n in _listed("exchanges") if n.startswith(f"{namespace}.")]
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            for name in queues:
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            for name in exchanges:
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)
