"""`python -m shared.messaging.cli parked list|replay QUEUE`: inspect and replay parked messages."""

from __future__ import annotations

import asyncio
import os

import typer
from rich.console import Console
from rich.table import Table

from shared.config import LOCAL_AMQP
from shared.messaging.broker import Broker
from shared.messaging.parking import list_parked, replay_parked

app = typer.Typer(help="Operator tools for the event bus.")
parked_app = typer.Typer(help="Messages parked after their retries ran out.")
app.add_typer(parked_app, name="parked")
console = Console()


def _broker(amqp_url: str | None, namespace: str | None) -> Broker:
    return Broker(
        url=amqp_url or os.environ.get("AMQP_URL", LOCAL_AMQP),
        namespace=namespace or os.environ.get("BUS_NAMESPACE", "onex"),
        name="onex-cli",
    )


@parked_app.command("list")
def list_command(
    queue: str = typer.Argument(help="consumer queue, e.g. onex.notify.sms"),
    limit: int = 100,
    amqp_url: str | None = None,
    namespace: str | None = None,
) -> None:
    async def run() -> None:
        broker = _broker(amqp_url, namespace)
        await broker.connect()
        try:
            rows = await list_parked(broker, queue, limit=limit)
        finally:
            await broker.close()
        table = Table("message_id", "event_type", "subject", "error")
        for row in rows:
            table.add_row(str(row["message_id"]), str(row["event_type"]), str(row["subject"]), str(row["error"]))
        console.print(table)
        console.print(f"{len(rows)} parked message(s) in {queue}.parked")

    asyncio.run(run())


@parked_app.command("replay")
def replay_command(
    queue: str = typer.Argument(help="consumer queue, e.g. onex.notify.sms"),
    limit: int | None = None,
    amqp_url: str | None = None,
    namespace: str | None = None,
) -> None:
    async def run() -> None:
        broker = _broker(amqp_url, namespace)
        await broker.connect()
        try:
            count = await replay_parked(broker, queue, limit=limit)
        finally:
            await broker.close()
        console.print(f"replayed {count} message(s) into {queue}")

    asyncio.run(run())


if __name__ == "__main__":
    app()
