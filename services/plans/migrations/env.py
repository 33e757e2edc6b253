from services.plans.models import Base
from shared.db import run_migrations_env

run_migrations_env(Base.metadata)
