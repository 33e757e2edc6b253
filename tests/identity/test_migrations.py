"""The migrations build exactly the tables the models declare (nothing left for autogenerate)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.identity.models import Base


async def test_migrations_match_the_models(svc) -> None:
    async with svc.runtime.engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert diff == []
