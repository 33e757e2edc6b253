"""Tokens minted by identity's login are verified by another service's dependency with identity's
JWKS; a rotated key stays valid until its tokens expire; production refuses dev defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import ValidationError

from services.identity.config import IdentitySettings
from services.identity.keyring import MissingSigningKey, build_issuer, ensure_dev_key
from services.plans.config import PlansSettings
from shared.auth.dependencies import CurrentPrincipal, require_roles
from shared.auth.keys import SigningKey, generate_private_pem
from shared.auth.principal import Role
from shared.auth.verifier import TokenVerifier
from shared.runtime import create_service_app
from shared.testing.harness import RunningService, running_service, service_settings
from tests.identity.factories import TEST_KEY, Client, add_institution, identity_service, identity_settings

other = APIRouter(prefix="/api/v1/other")


@other.get("/whoami", dependencies=[Depends(require_roles(Role.institution))])
async def whoami(principal: CurrentPrincipal) -> dict[str, str | None]:
    return {"account": principal.account, "institution_code": principal.institution_code}


def _jwks_through(identity: RunningService):
    """Identity's JWKS endpoint, fetched over HTTP exactly as `jwks_from_url` would."""

    async def fetch():
        response = await identity.client.get("/api/v1/auth/jwks")
        response.raise_for_status()
        return response.json()

    return fetch


@pytest.fixture(scope="module")
async def other_service(servers, run_id, svc) -> AsyncIterator[RunningService]:
    settings = service_settings(PlansSettings, servers=servers, run_id=run_id, service="id_other")
    verifier = TokenVerifier(source=_jwks_through(svc), issuer="onex-identity", audience="onex")

    def create_app(s: PlansSettings) -> FastAPI:
        return create_service_app(settings=s, title="other", description="other", routers=[other], verifier=verifier)

    async with running_service(create_app, settings) as running:
        yield running


async def test_jwks_publishes_the_ed25519_public_key(svc) -> None:
    response = await svc.client.get("/api/v1/auth/jwks")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert key["kid"] == SigningKey.from_pem(TEST_KEY).kid and "d" not in key


async def test_tokens_are_verified_by_another_services_dependency(client: Client, svc, other_service) -> None:
    school = await client.register(await add_institution(svc))
    pair = await client.tokens(school["account"], school["password"])
    ok = await other_service.client.get(
        "/api/v1/other/whoami", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert ok.status_code == 200
    assert ok.json() == {"account": school["account"], "institution_code": school["account"]}
    tampered = pair["access_token"][:-4] + ("AAAA" if not pair["access_token"].endswith("AAAA") else "BBBB")
    bad = await other_service.client.get("/api/v1/other/whoami", headers={"Authorization": f"Bearer {tampered}"})
    assert bad.status_code == 401


async def test_a_foreign_key_is_rejected(other_service, tokens) -> None:
    response = await other_service.client.get("/api/v1/other/whoami", headers=tokens.headers("institution"))
    assert response.status_code == 401


async def test_rotation_keeps_the_previous_key_valid(client: Client, svc, servers, run_id, clock, probe) -> None:
    school = await client.register(await add_institution(svc))
    old_token = (await client.tokens(school["account"], school["password"]))["access_token"]
    rotated = identity_settings(
        servers, run_id, "id_rotated", signing_key=generate_private_pem(), previous_signing_keys=TEST_KEY
    )
    async with identity_service(rotated, clock) as new_identity:
        kids = [k["kid"] for k in (await new_identity.client.get("/api/v1/auth/jwks")).json()["keys"]]
        assert kids[1] == SigningKey.from_pem(TEST_KEY).kid and len(kids) == 2
        verifier = TokenVerifier(source=_jwks_through(new_identity), issuer="onex-identity", audience="onex")
        principal = await verifier.verify(old_token)
        assert principal.account == school["account"]
        # the rotated identity itself accepts the old token too: it gets past verification and only
        # then finds that its own (separate) database has no such account
        me = await new_identity.client.get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {old_token}"})
        assert me.json()["detail"] == "账号已不存在，请重新登录。"
        forged = await new_identity.client.get("/api/v1/accounts/me", headers={"Authorization": "Bearer x.y.z"})
        assert forged.json()["detail"] == "登录已失效，请重新登录。"


def test_production_refuses_a_missing_key_and_the_dev_operator_password() -> None:
    with pytest.raises(ValidationError) as refused:
        IdentitySettings(app_env="prod", amqp_url="amqp://u:p@mq/")
    assert "IDENTITY_SIGNING_KEY" in str(refused.value) and "OPERATOR_PASSWORD" in str(refused.value)
    with pytest.raises(ValidationError):
        IdentitySettings(
            app_env="prod", amqp_url="amqp://u:p@mq/", signing_key=TEST_KEY, operator_password="Operator#2026"
        )
    deployed = {
        "app_env": "prod",
        "amqp_url": "amqp://u:p@mq/",
        "database_url": "postgresql+asyncpg://identity:pw@identity-db:5432/identity",
        "jwks_url": "http://identity:8000/api/v1/auth/jwks",
    }
    with pytest.raises(ValidationError) as no_database:
        IdentitySettings(**{**deployed, "database_url": ""}, signing_key=TEST_KEY, operator_password="a-real-2026")
    assert "DATABASE_URL" in str(no_database.value)
    fine = IdentitySettings(**deployed, signing_key=TEST_KEY, operator_password="a-real-secret-2026")
    assert build_issuer(fine).current.kid == SigningKey.from_pem(TEST_KEY).kid


def test_outside_dev_a_missing_key_is_an_error() -> None:
    with pytest.raises(MissingSigningKey):
        build_issuer(IdentitySettings(app_env="test"))


def test_key_may_be_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(TEST_KEY)
    issuer = build_issuer(IdentitySettings(app_env="test", signing_key=str(path)))
    assert issuer.current.kid == SigningKey.from_pem(TEST_KEY).kid


def test_dev_key_is_generated_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "var" / "keys" / "identity-ed25519.pem"
    first = build_issuer(IdentitySettings(app_env="dev", dev_key_file=str(path)))
    second = build_issuer(IdentitySettings(app_env="dev", dev_key_file=str(path)))
    assert path.exists() and first.current.kid == second.current.kid
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ensure_dev_key(path) == path.read_text()


def test_environment_names_the_operator_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_PASSWORD", "From-the-env-1")
    assert IdentitySettings().operator_password_value == "From-the-env-1"
    monkeypatch.delenv("OPERATOR_PASSWORD")
    assert IdentitySettings(app_env="dev").operator_password_value == "Operator#2026"


def test_instances_racing_for_the_dev_key_agree(tmp_path: Path) -> None:
    """Several local instances start at once without a configured key: one key file wins for all."""
    path = tmp_path / "race" / "identity-ed25519.pem"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: ensure_dev_key(path), range(8)))
    assert len(set(keys)) == 1 and SigningKey.from_pem(keys[0])
    assert list(path.parent.iterdir()) == [path]


async def test_openapi_documents_the_identity_api_without_dev_routes(svc) -> None:
    schema = (await svc.client.get("/api/v1/openapi/identity.json")).json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/auth/login",
        "/api/v1/auth/sms-codes",
        "/api/v1/auth/jwks",
        "/api/v1/accounts/sub-accounts",
    } <= paths
    assert not any(p.startswith("/api/v1/dev/") for p in paths)
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"400", "401", "423", "429"} <= set(login)


async def test_garbage_refresh_token_is_unauthenticated(svc) -> None:
    response = await svc.client.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
