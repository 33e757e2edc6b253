"""The deadline rush: N schools (each its own account) save and submit their drafts at once through the
gateway, then the province decides them all. Beside it, in the same run, a bare baseline: a minimal
FastAPI endpoint doing one INSERT (bench/baseline_app.py, 2 uvicorn workers) behind an nginx rendered
from the same gateway template, hit by the same client at the same concurrency.

    PYTHONPATH=. .venv/bin/python -m bench.rush [--schools 500] [--concurrency 32]
                                                [--attach RUN_ID:BASE_PORT]

Reports per operation: count, errors, throughput, p50 and p99; event lags: submit → the reviewer can
list it, approval → SMS recorded (the SMS row's created_at); and the ratio submit / baseline.
Aim: submit throughput ≥ half the baseline's, p99 < 300 ms, event lag p99 < 1 s.

The platform is started isolated (own databases, namespace, ports; dropped at the end) unless
--attach names one started earlier. Schools: the 北京 register, topped up with 中职 schools the
province adds itself through the API (as the manual says departments do); accounts are made by
identity's create_account (the operator seed path); each school logs in through the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from deploy.gateway.nginx import Gateway
from deploy.gateway.render import GatewayConfig, RateLimits
from deploy.gateway.routes import SERVICES
from deploy.platform import Platform, port_offsets
from deploy.processes import find_free_base_port, stop_processes
from shared.config import LOCAL_PG
from shared.db import create_database, drop_database
from tests.e2e.api import Api, School, bearer, plain_body
from tests.e2e.seeding import create_schools, register_page, sign_in_and_complete

ROOT = Path(__file__).resolve().parents[1]
PROVINCE, CITY, DISTRICT = "11", "1101", "110108"
LIMITS = RateLimits(login_rate="6000r/m", login_burst=2000, sms_rate="600r/m", sms_burst=100, auth_burst=2000)


@dataclass
class Op:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        begin = time.perf_counter()
        self.started = self.started or begin
        try:
            yield
        except Exception:
            self.errors += 1
            raise
        finally:
            end = time.perf_counter()
            self.ended = max(self.ended, end)
        self.latencies.append(end - begin)

    def row(self) -> str:
        span = max(self.ended - self.started, 1e-9)
        if not self.latencies:
            return f"{self.name:<34} {0:>6} {self.errors:>6}"
        return (
            f"{self.name:<34} {len(self.latencies):>6} {self.errors:>6} {len(self.latencies) / span:>9.1f} "
            f"{pct(self.latencies, 50) * 1000:>8.1f} {pct(self.latencies, 99) * 1000:>8.1f}"
        )

    @property
    def rate(self) -> float:
        return len(self.latencies) / max(self.ended - self.started, 1e-9)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bounded(concurrency: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await job()

    await asyncio.gather(*(run(job) for job in jobs))


def ok(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in (statuses or (200,)):
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    return response.json() if response.content else None


# ---- the baseline ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def baseline(run_dir: Path, pg_base: str) -> Any:
    """bench/baseline_app.py (2 workers) behind its own nginx from the gateway template."""
    base = find_free_base_port([1, 80])
    app_port, gw_port = base + 1, base + 80
    db_url = f"{pg_base}/t_rush_{secrets.token_hex(3)}_baseline"
    await create_database(db_url)
    env = {**os.environ, "BASELINE_DSN": db_url.replace("+asyncpg", ""), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--workers", "2", "--port", str(app_port)]
    argv += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
    gateway = Gateway(
        GatewayConfig(
            listen=f"127.0.0.1:{gw_port}",
            upstreams={s: [f"127.0.0.1:{app_port}"] for s in SERVICES},
            prefix=run_dir / "nginx-baseline",
            log_dir=run_dir / "log-baseline",
            limits=LIMITS,
        ),
        cwd=ROOT,
    )
    try:
        (run_dir / "log-baseline").mkdir(parents=True, exist_ok=True)
        async with httpx.AsyncClient(trust_env=False) as client:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{app_port}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the baseline app did not start")
                await asyncio.sleep(0.2)
        gateway.apply()
        yield gateway.url
    finally:
        gateway.stop()
        stop_processes([process.pid])
        with contextlib.suppress(Exception):
            await drop_database(db_url)


async def measure_baseline(url: str, requests: int, concurrency: int) -> Op:
    op = Op("baseline: POST one INSERT")
    body = {"plan_id": "x", "majors": [], "trainees_total": 30, "faculty_html": "<p>x</p>", "venue_html": "<p>y</p>"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False, limits=limits) as client:
        for _ in range(min(50, requests)):  # warm-up: connections and both workers' pools
            await client.post("/api/v1/applications", json=body)

        async def one() -> None:
            with op.timed():
                ok(await client.post("/api/v1/applications", json=body), 201)

        await bounded(concurrency, [one] * requests)
    return op


# ---- the platform -------------------------------------------------------------------------------------


async def top_up_register(api: Api, province: str, wanted: int) -> None:
    """The province adds 中职 schools to the register until it has `wanted` institutions."""
    have = len(await register_page(api.client, PROVINCE))
    missing = max(0, wanted - have)

    async def add(index: int) -> None:
        body = {
            "code": f"3111{index:06d}",
            "name": f"北京市第{index}职业学校（压测）",
            "type": "secondary_vocational",
            "province_code": PROVINCE,
            "city_code": CITY,
        }
        ok(await api.client.post("/api/v1/institutions", json=body, headers=bearer(province)), 201, 409)

    await bounded(16, [lambda i=i: add(i) for i in range(1, missing + 1)])
    deadline = time.monotonic() + 120
    while len(await register_page(api.client, PROVINCE)) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError("the register did not grow")
        await asyncio.sleep(0.5)


async def registered_codes(platform: Platform) -> set[str]:
    """Institutions of the province that already have an account (an attached platform used before)."""
    conn = await asyncpg.connect(platform.database_url("identity").replace("+asyncpg", ""))
    try:
        query = "SELECT institution_code FROM accounts WHERE institution_code IS NOT NULL AND province_code = $1"
        return {r["institution_code"] for r in await conn.fetch(query, PROVINCE)}
    finally:
        await conn.close()


async def wait_identity_copy(platform: Platform, count: int) -> None:
    """identity makes school accounts against its register copy (fed by registry's events): wait for it."""
    conn = await asyncpg.connect(platform.database_url("identity").replace("+asyncpg", ""))
    try:
        deadline = time.monotonic() + 180
        query = "SELECT count(*) FROM institutions WHERE province_code = $1"
        while await conn.fetchval(query, PROVINCE) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("identity's register copy did not catch up within 180 s")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def rush(api: Api, platform: Platform, schools_wanted: int, concurrency: int) -> dict[str, Any]:
    province = await api.login("bj_province")
    taken = await registered_codes(platform)
    wanted = schools_wanted + len(taken) + 1
    print(f"setup: register of {PROVINCE} topped up to {wanted} institutions …", flush=True)
    await top_up_register(api, province, wanted)
    await wait_identity_copy(platform, wanted)
    print(f"setup: {schools_wanted} school accounts (identity seed path) …", flush=True)
    schools = await create_schools(
        api,
        platform.database_url("identity"),
        province_code=PROVINCE,
        count=schools_wanted,
        exclude=taken,
        concurrency=4,
    )
    print("setup: each school logs in through the gateway and completes its profile …", flush=True)
    login_started = time.perf_counter()
    await sign_in_and_complete(api, schools, city_code=CITY, district_code=DISTRICT, concurrency=concurrency)
    print(f"setup: {len(schools)} logins + profiles in {time.perf_counter() - login_started:.1f}s", flush=True)
    plan = await api.open_plan(schools[0].token)
    certificate = (await api.certificates())[-1]

    save, submit, listed, approve = Op("save draft (POST)"), Op("submit"), Op("reviewer list (pending)"), Op("approve")
    drafts: dict[str, str] = {}
    submitted_at: dict[str, float] = {}
    list_lag: list[float] = []
    approved_at: dict[str, float] = {}

    async def save_timed(school: School) -> None:
        body = plain_body(plan, certificate, trainees=30)
        with save.timed():
            response = await api.client.post("/api/v1/applications", json=body, headers=school.headers)
            drafts[school.code] = ok(response, 201)["id"]

    await profiles_copied(platform, schools)
    ready = schools
    print(f"rush: {len(ready)} schools save their drafts at once (concurrency {concurrency}) …", flush=True)
    await bounded(concurrency, [lambda s=s: save_timed(s) for s in ready])

    async def submit_one(school: School) -> None:
        application_id = drafts[school.code]
        with submit.timed():
            ok(await api.client.post(f"/api/v1/applications/{application_id}/submit", headers=school.headers))
        submitted_at[application_id] = time.perf_counter()

    async def reviewer_polls(stop: asyncio.Event) -> None:
        """The province's reviewer keeps listing the pending tab (every page): when each one shows up."""
        seen: set[str] = set()
        while not (stop.is_set() and seen >= set(submitted_at)):
            page_number, total = 1, 1
            while (page_number - 1) * 100 < total:
                with listed.timed():
                    page = ok(
                        await api.client.get(
                            "/api/v1/applications",
                            params={"status": "pending", "page": page_number, "page_size": 100},
                            headers=bearer(province),
                        )
                    )
                now = time.perf_counter()
                total = page["total"]
                for item in page["items"]:
                    if item["id"] in submitted_at and item["id"] not in seen:
                        seen.add(item["id"])
                        list_lag.append(now - submitted_at[item["id"]])
                page_number += 1

    print("rush: every school submits (the reviewer keeps listing the pending tab) …", flush=True)
    with_drafts = [s for s in ready if s.code in drafts]
    stop = asyncio.Event()
    poller = asyncio.create_task(reviewer_polls(stop))
    await bounded(concurrency, [lambda s=s: submit_one(s) for s in with_drafts])
    stop.set()
    await asyncio.wait_for(poller, timeout=120)

    async def approve_one(school: School) -> None:
        application_id = drafts[school.code]
        with approve.timed():
            ok(
                await api.client.post(
                    f"/api/v1/applications/{application_id}/reviews",
                    json={"decision": "approve", "approved_trainees": 25},
                    headers=bearer(province),
                )
            )
        approved_at[school.phone] = time.time()

    print("rush: the province approves them all …", flush=True)
    await bounded(concurrency, [lambda s=s: approve_one(s) for s in with_drafts])

    print("rush: waiting for every approval SMS …", flush=True)
    sms_lag: list[float] = []
    deadline = time.monotonic() + 300
    pending = {s.phone for s in with_drafts if s.phone in approved_at}
    while pending and time.monotonic() < deadline:
        for phone in list(pending):
            messages = await api.sms_inbox(phone)
            found = [m for m in messages if "审核通过" in m["body"]]
            if found:
                recorded = datetime.fromisoformat(found[-1]["created_at"].replace("Z", "+00:00")).timestamp()
                sms_lag.append(recorded - approved_at[phone])
                pending.discard(phone)
        if pending:
            await asyncio.sleep(0.5)
    return {
        "ops": [save, submit, listed, approve],
        "list_lag": list_lag,
        "sms_lag": sms_lag,
        "sms_missing": len(pending),
        "schools": len(with_drafts),
    }


async def profiles_copied(platform: Platform, schools: list[School]) -> None:
    """Before the rush: applications' copy of the institutions has every completed profile (it arrives
    by registry's events; a draft before it would be refused with profile_incomplete)."""
    conn = await asyncpg.connect(platform.database_url("applications").replace("+asyncpg", ""))
    codes = [s.code for s in schools]
    try:
        deadline = time.monotonic() + 180
        query = "SELECT count(*) FROM institution_copies WHERE code = ANY($1::text[]) AND profile_completed"
        while await conn.fetchval(query, codes) < len(codes):
            if time.monotonic() > deadline:
                raise RuntimeError("completed profiles did not reach applications within 180 s")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def lag_line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} none measured"
    return (
        f"{name:<34} n={len(values):<5} p50 {pct(values, 50) * 1000:7.1f} ms   p99 {pct(values, 99) * 1000:7.1f} ms"
        f"   max {max(values) * 1000:7.1f} ms"
    )


async def main(args: argparse.Namespace) -> int:
    scale = {"applications": args.applications, "notify": args.notify}
    if args.attach:
        run, _, port = args.attach.partition(":")
        platform = Platform(
            run_id=run,
            base_port=int(port),
            scale=scale,
            namespace=f"t{run}",
            db_prefix=f"t_{run}_",
            seed=False,
            web=False,
            limits=LIMITS,
        )
        owned = False
    else:
        run = "rush" + secrets.token_hex(2)
        platform = Platform(
            run_id=run,
            base_port=find_free_base_port(port_offsets(scale)),
            scale=scale,
            namespace=f"t{run}",
            db_prefix=f"t_{run}_",
            seed=True,
            web=False,
            limits=LIMITS,
            db_pool_size=args.db_pool_size,
            drop_on_stop=True,
            say=lambda m: print(f"  platform: {m}", flush=True),
        )
        owned = True
        print(f"starting an isolated platform ({run}, scale {scale}) …", flush=True)
        await asyncio.to_thread(platform.start)
    try:
        limits = httpx.Limits(max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2)
        async with httpx.AsyncClient(
            base_url=platform.gateway_url, timeout=60, trust_env=False, limits=limits
        ) as client:
            result = await rush(Api(client), platform, args.schools, args.concurrency)
        async with baseline(platform.run_dir, LOCAL_PG.rstrip("/")) as baseline_url:
            print(f"baseline: {args.schools * 2} POSTs through its nginx …", flush=True)
            base = await measure_baseline(baseline_url, args.schools * 2, args.concurrency)
    finally:
        if owned:
            await asyncio.to_thread(platform.stop)
    ops: list[Op] = result["ops"]
    print()
    print(f"deadline rush: {result['schools']} schools, concurrency {args.concurrency}, scale {scale}")
    print(f"{'operation':<34} {'count':>6} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for op in [*ops, base]:
        print(op.row())
    print(lag_line("lag submit → reviewer lists it", result["list_lag"]))
    print(lag_line("lag approval → SMS recorded", result["sms_lag"]))
    if result["sms_missing"]:
        print(f"approval SMS missing after 300 s: {result['sms_missing']}")
    submit = ops[1]
    ratio = submit.rate / base.rate if base.rate else float("nan")
    print(f"submit throughput / baseline throughput = {submit.rate:.1f} / {base.rate:.1f} = {ratio:.2f}")
    aims = {
        "submit ≥ half the baseline": ratio >= 0.5,
        "p99 < 300 ms (save, submit, approve)": all(pct(o.latencies, 99) < 0.3 for o in (ops[0], ops[1], ops[3])),
        "event lag p99 < 1 s": all(v and pct(v, 99) < 1.0 for v in (result["list_lag"], result["sms_lag"])),
    }
    for aim, met in aims.items():
        print(f"  aim {aim}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--applications", type=int, default=2, help="applications instances")
    parser.add_argument("--notify", type=int, default=2, help="notify instances")
    parser.add_argument("--db-pool-size", type=int, default=8)
    parser.add_argument("--attach", help="RUN_ID:BASE_PORT of an isolated platform started earlier")
    sys.exit(asyncio.run(main(parser.parse_args())))
