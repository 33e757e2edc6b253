"""Use cases of the registry service: one function, one transaction; events staged in it.

Every function that writes commits its own transaction (`session.begin()`), so a caller passes a
fresh session. Events are staged in the outbox only for real changes, with the subject's new
`version` as `subject_version`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, tabular
from services.registry.domain import InstitutionRow, RowError, Scope
from services.registry.exceptions import (
    CertificateExists,
    ImportConflict,
    ImportFileInvalid,
    InstitutionExists,
    InstitutionNameTaken,
    InstitutionNotFound,
    InvalidProfile,
    NotFound,
    OrganizationExists,
    PreconditionRequired,
    UnknownMajors,
    VersionConflict,
)
from services.registry.models import Certificate, Institution, Major, Organization, Pilot, Region
from services.registry.reference import MajorRow, RegionRow
from shared.auth.principal import Principal, Role
from shared.contracts.applications import PilotGrantedData
from shared.contracts.envelope import Event
from shared.contracts.registry import (
    CertificateData,
    CertificateUpserted,
    InstitutionData,
    InstitutionUpserted,
    MajorData,
    MajorUpserted,
)
from shared.messaging.outbox import stage

PRODUCER = "registry"
_UPDATABLE = ("code", "name", "type", "province_code", "city_code", "district_code", "profile_completed", "version")
CHUNK = 1000
Progress = Callable[[int], None]


def org_id_for(name: str) -> uuid.UUID:
    """Organisation ids are derived from the name, so demo accounts can name them in advance."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "onex-org:" + name)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _stage(session: AsyncSession, events: Sequence[Event[Any]]) -> None:
    for start in range(0, len(events), CHUNK):
        await stage(session, *events[start : start + CHUNK], producer=PRODUCER)


async def _page(session: AsyncSession, query: Select[Any], *, offset: int, limit: int) -> tuple[list[Any], int]:
    total = (await session.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), int(total)


def scope_of(principal: Principal) -> Scope | None:
    """Where a caller may manage institutions; None for roles that may not."""
    if principal.role is Role.operator:
        return Scope(anywhere=True)
    if principal.role is Role.provincial and principal.province_code:
        return Scope(province_code=principal.province_code)
    if principal.role is Role.municipal and principal.province_code and principal.city_code:
        return Scope(province_code=principal.province_code, city_code=principal.city_code)
    return None


# ---------------------------------------------------------------- regions


async def load_regions(session: AsyncSession, *, rows: Iterable[RegionRow]) -> int:
    """Insert or correct every region (idempotent). Returns how many rows changed."""
    values = [{"code": r.code, "name": r.name, "level": r.level, "parent_code": r.parent_code} for r in rows]
    changed = 0
    async with session.begin():
        for start in range(0, len(values), CHUNK):
            base = pg_insert(Region).values(values[start : start + CHUNK])
            excluded = base.excluded
            stmt = base.on_conflict_do_update(
                index_elements=[Region.code],
                set_={"name": excluded.name, "level": excluded.level, "parent_code": excluded.parent_code},
                where=tuple_(Region.name, Region.level, Region.parent_code).is_distinct_from(
                    tuple_(excluded.name, excluded.level, excluded.parent_code)
                ),
            ).returning(Region.code)
            changed += len((await session.execute(stmt)).all())
    return changed


async def list_regions(session: AsyncSession, *, parent_code: str | None) -> list[Region]:
    """Children of `parent_code`, or the provinces when it is None."""
    condition = Region.parent_code.is_(None) if parent_code is None else Region.parent_code == parent_code
    return list((await session.execute(select(Region).where(condition).order_by(Region.code))).scalars())


async def _region_parents(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, str | None]:
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    rows = await session.execute(select(Region.code, Region.parent_code).where(Region.code.in_(wanted)))
    return {code: parent for code, parent in rows.all()}


async def _region_index(session: AsyncSession) -> domain.RegionIndex:
    rows = (await session.execute(select(Region.code, Region.name, Region.level, Region.parent_code))).all()
    by_code = {code: parent for code, _, _, parent in rows}
    return domain.RegionIndex.build(
        provinces=[(c, n) for c, n, level, _ in rows if level == "province"],
        cities=[(c, n, p) for c, n, level, p in rows if level == "city" and p],
        areas=[(c, n, p, by_code.get(p) or "") for c, n, level, p in rows if level == "district" and p],
    )


# ---------------------------------------------------------------- institutions: events and reads


def institution_data(row: Institution | Mapping[str, Any]) -> InstitutionData:
    get = row.get if isinstance(row, Mapping) else (lambda name: getattr(row, name))
    return InstitutionData(
        code=get("code"),
        name=get("name"),
        type=get("type"),
        province_code=get("province_code"),
        city_code=get("city_code"),
        district_code=get("district_code"),
        profile_completed=bool(get("profile_completed")),
        contact_name=get("contact_name"),
        contact_phone=get("contact_phone"),
    )


def _institution_event(row: Institution | Mapping[str, Any]) -> InstitutionUpserted:
    data = institution_data(row)
    version = row["version"] if isinstance(row, Mapping) else row.version
    return InstitutionUpserted(subject=data.code, subject_version=version, data=data)


async def search_institutions(
    session: AsyncSession, *, province_code: str | None, q: str | None, offset: int, limit: int
) -> tuple[list[Any], int]:
    """Public search for the registration page: name substring within a province.

    One round trip: the four public columns and the total (a window count) together.
    """
    conditions = []
    if province_code:
        conditions.append(Institution.province_code == province_code)
    if q:
        conditions.append(Institution.name.ilike(_like(q)))
    columns = (Institution.code, Institution.name, Institution.province_code, Institution.type)
    query = select(*columns, func.count().over().label("total")).where(*conditions).order_by(Institution.code)
    rows = list((await session.execute(query.offset(offset).limit(limit))).all())
    if rows:
        return rows, int(rows[0].total)
    total = await session.scalar(select(func.count()).select_from(Institution).where(*conditions))
    return [], int(total or 0)


def _may_view(principal: Principal, institution: Institution) -> bool:
    if principal.is_school:
        return principal.institution_code == institution.code
    scope = scope_of(principal)
    return scope is not None and scope.covers(institution.province_code, institution.city_code)


async def get_institution(session: AsyncSession, *, principal: Principal, code: str) -> Institution:
    """The whole record, for the school itself, its departments and operators; else not found."""
    institution = await session.get(Institution, code)
    if institution is None or not _may_view(principal, institution):
        raise InstitutionNotFound(code)
    return institution


def _require_version(if_match: int | None, *, current: int, subject: str) -> None:
    """A change names the version it was based on (If-Match): missing is 428, stale is 412."""
    if if_match is None:
        raise PreconditionRequired(subject)
    if if_match != current:
        raise VersionConflict(subject)


async def update_profile(
    session: AsyncSession, *, principal: Principal, code: str, profile: Mapping[str, str | None], if_match: int | None
) -> Institution:
    """The school completes its base info; `profile_completed` follows the domain rules. The change
    must name the version it was based on (If-Match), so two editors cannot overwrite each other."""
    async with session.begin():
        institution = await session.get(Institution, code, with_for_update=True)
        if institution is None or principal.institution_code != code:
            raise InstitutionNotFound(code)
        _require_version(if_match, current=institution.version, subject=code)
        current = {name: getattr(institution, name) for name in domain.PROFILE_FIELDS}
        merged = domain.merge_profile(current, profile)
        errors = domain.profile_format_errors(profile)
        if profile.get("province_code") and profile["province_code"] != institution.province_code:
            errors["province_code"] = "不能修改院校所在省份"
        regions = [merged["province_code"], merged["city_code"], merged["district_code"]]
        errors |= domain.region_chain_errors(
            province_code=merged["province_code"],
            city_code=merged["city_code"],
            district_code=merged["district_code"],
            parents=await _region_parents(session, regions),
        )
        if errors:
            raise InvalidProfile("invalid profile", fields=errors)
        changed = _apply_profile(institution, merged)
        if changed:
            institution.version += 1
            institution.updated_at = func.now()
            await session.flush()
            await session.refresh(institution)
            await _stage(session, [_institution_event(institution)])
    return institution


def _apply_profile(institution: Institution, merged: Mapping[str, str | None]) -> bool:
    values: dict[str, Any] = {**merged, "profile_completed": domain.profile_completed(merged)}
    changed = False
    for name, value in values.items():
        if getattr(institution, name) != value:
            setattr(institution, name, value)
            changed = True
    return changed


async def create_institution(session: AsyncSession, *, principal: Principal, row: InstitutionRow) -> Institution:
    """A department adds an institution in its own scope (operator anywhere)."""
    scope = scope_of(principal)
    if scope is None or not scope.covers(row.province_code, row.city_code):
        raise NotFound("out of scope")
    async with session.begin():
        errors = await _row_region_errors(session, [row])
        if errors:
            raise InvalidProfile("invalid regions", fields={e.field: e.message for e in errors})
        if await session.get(Institution, row.code) is not None:
            raise InstitutionExists(row.code)
        taken = await session.scalar(
            select(Institution.code).where(Institution.province_code == row.province_code, Institution.name == row.name)
        )
        if taken is not None:
            raise InstitutionNameTaken(row.name)
        institution = Institution(**_new_values(row), version=1)
        session.add(institution)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise InstitutionExists(row.code) from exc
        await session.refresh(institution)
        await _stage(session, [_institution_event(institution)])
    return institution


def _new_values(row: InstitutionRow) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "type": row.type,
        "province_code": row.province_code,
        "city_code": row.city_code,
        "district_code": row.district_code,
        "profile_completed": False,
    }


async def _row_region_errors(session: AsyncSession, rows: Sequence[InstitutionRow]) -> list[RowError]:
    parents = await _region_parents(session, [c for r in rows for c in (r.province_code, r.city_code, r.district_code)])
    errors: list[RowError] = []
    for r in rows:
        found = domain.region_chain_errors(
            province_code=r.province_code, city_code=r.city_code, district_code=r.district_code, parents=parents
        )
        errors.extend(RowError(r.row, name, message) for name, message in found.items())
    return errors


# ---------------------------------------------------------------- institutions: bulk import


@dataclass
class ImportResult:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    unplaced: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({e.row for e in self.errors})


async def import_institution_file(
    session: AsyncSession, *, content: bytes, scope: Scope, progress: Progress | None = None
) -> ImportResult:
    """Import a CSV/XLSX of institutions (generic columns, or the Ministry list's own layout).

    Each row is imported whole or not at all: invalid rows are reported with their row numbers and
    the others are kept. A re-run of the same file changes nothing and emits no event.
    """
    header, records = tabular.read_table(content)
    result = ImportResult(total=len(records))
    async with session.begin():
        rows = await _parse_rows(session, header, records, result)
        rows, existing = await _check_rows(session, rows, scope, result)
        try:
            await _write_rows(session, rows, existing, result, progress)
        except IntegrityError as exc:
            raise ImportConflict("concurrent change") from exc
    result.errors.sort(key=lambda e: (e.row, e.field))
    return result


async def _parse_rows(
    session: AsyncSession, header: list[str], records: list[tuple[int, dict[str, str]]], result: ImportResult
) -> list[InstitutionRow]:
    rows = []
    if domain.is_ministry_layout(header):
        index = await _region_index(session)
        for number, record in records:
            parsed, errors, unplaced = domain.parse_ministry_row(number, record, index)
            if unplaced:
                where = f"{record.get('省份', '')} {record.get('所在地', '')}".strip()
                result.unplaced.append(RowError(number, "所在地", f"{record.get('学校名称', '')}：{where}"))
            result.errors.extend(errors)
            rows.extend([parsed] if parsed else [])
        return rows
    if not {"code", "name"} & set(header) and not {"学校标识码", "院校代码"} & set(header):
        raise ImportFileInvalid("缺少必需的列：code（院校代码）、name（院校名称）、type、province_code。")
    for number, record in records:
        parsed, errors = domain.parse_generic_row(number, record)
        result.errors.extend(errors)
        rows.extend([parsed] if parsed else [])
    return rows


async def _check_rows(
    session: AsyncSession, rows: list[InstitutionRow], scope: Scope, result: ImportResult
) -> tuple[list[InstitutionRow], dict[str, dict[str, Any]]]:
    """Drop rows that repeat an earlier row, leave the caller's scope, or clash with the register."""
    region_errors = await _row_region_errors(session, rows)
    result.errors.extend(region_errors)
    bad = {e.row for e in region_errors}
    existing = await _lock_existing(session, [r.code for r in rows])
    names = await _names_in_use(session, rows)
    seen_codes: dict[str, int] = {}
    seen_names: dict[tuple[str, str], int] = {}
    kept = []
    for r in rows:
        error = _row_conflict(r, scope, existing.get(r.code), names, seen_codes, seen_names)
        if error:
            result.errors.append(RowError(r.row, *error))
        elif r.row not in bad:
            kept.append(r)
        seen_codes.setdefault(r.code, r.row)
        seen_names.setdefault((r.province_code, r.name), r.row)
    return kept, existing


def _row_conflict(
    r: InstitutionRow,
    scope: Scope,
    current: Mapping[str, Any] | None,
    names: Mapping[tuple[str, str], str],
    seen_codes: Mapping[str, int],
    seen_names: Mapping[tuple[str, str], int],
) -> tuple[str, str] | None:
    if r.code in seen_codes:
        return "code", f"与第{seen_codes[r.code]}行的院校代码重复"
    if (r.province_code, r.name) in seen_names:
        return "name", f"与第{seen_names[(r.province_code, r.name)]}行的院校名称重复"
    if not scope.covers(r.province_code, r.city_code):
        return "province_code", "该院校所在地区不在您的管辖范围内"
    if current is not None and not scope.covers(current["province_code"], current["city_code"]):
        return "code", "该院校代码已属于其他地区的院校"
    holder = names.get((r.province_code, r.name))
    if holder is not None and holder != r.code:
        return "name", "同一省份内已有同名院校"
    return None


async def _lock_existing(session: AsyncSession, codes: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(codes), 5 * CHUNK):
        query = select(Institution).where(Institution.code.in_(codes[start : start + 5 * CHUNK])).with_for_update()
        for inst in (await session.execute(query)).scalars():
            found[inst.code] = {c.key: getattr(inst, c.key) for c in Institution.__table__.columns}
    return found


async def _names_in_use(session: AsyncSession, rows: list[InstitutionRow]) -> dict[tuple[str, str], str]:
    names = sorted({r.name for r in rows})
    query = select(Institution.province_code, Institution.name, Institution.code).where(Institution.name.in_(names))
    return {(p, n): code for p, n, code in (await session.execute(query)).all()} if names else {}


async def _write_rows(
    session: AsyncSession,
    rows: list[InstitutionRow],
    existing: Mapping[str, Mapping[str, Any]],
    result: ImportResult,
    progress: Progress | None,
) -> None:
    created, updated = [], []
    for r in rows:
        current = existing.get(r.code)
        if current is None:
            created.append({**_new_values(r), "version": 1})
            continue
        merged = domain.merge_register_row(current, r)
        if merged is None:
            result.unchanged += 1
        else:
            updated.append(merged)
    for start in range(0, len(created), CHUNK):
        await session.execute(insert(Institution), created[start : start + CHUNK])
        if progress:
            progress(len(created[start : start + CHUNK]))
    if updated:
        now = datetime.now(UTC)
        changes = [{**{k: u[k] for k in _UPDATABLE}, "updated_at": now} for u in updated]
        await session.execute(update(Institution), changes)
    if progress:
        progress(len(updated) + result.unchanged)
    result.created, result.updated = len(created), len(updated)
    await _stage(session, [_institution_event(v) for v in (*created, *updated)])


async def institutions_after(session: AsyncSession, *, after: str | None, limit: int) -> list[Institution]:
    """A keyset page of the register for a consumer rebuilding its copy."""
    query = select(Institution).order_by(Institution.code).limit(limit)
    if after:
        query = query.where(Institution.code > after)
    return list((await session.execute(query)).scalars())


# ---------------------------------------------------------------- majors


def _major_event(row: Major | Mapping[str, Any]) -> MajorUpserted:
    get = row.get if isinstance(row, Mapping) else (lambda name: getattr(row, name))
    data = MajorData(code=get("code"), name=get("name"), level=get("level"), category_name=get("category_name"))
    return MajorUpserted(subject=data.code, subject_version=get("version"), data=data)


async def load_majors(session: AsyncSession, *, rows: Iterable[MajorRow]) -> tuple[int, int]:
    """Insert or correct the catalogue (idempotent); events for real changes. Returns (created, updated)."""
    values = [
        {
            "code": r.code,
            "name": r.name,
            "level": r.level,
            "category_code": r.category_code or None,
            "category_name": r.category_name or None,
            "class_code": r.class_code or None,
            "class_name": r.class_name or None,
        }
        for r in rows
    ]
    keys = ("name", "level", "category_code", "category_name", "class_code", "class_name")
    changed: list[Mapping[str, Any]] = []
    created = 0
    async with session.begin():
        for start in range(0, len(values), CHUNK):
            base = pg_insert(Major).values(values[start : start + CHUNK])
            excluded = base.excluded
            stmt = base.on_conflict_do_update(
                index_elements=[Major.code],
                set_={**{k: excluded[k] for k in keys}, "version": Major.version + 1},
                where=tuple_(*(Major.__table__.c[k] for k in keys)).is_distinct_from(
                    tuple_(*(excluded[k] for k in keys))
                ),
            ).returning(Major.__table__)
            rows_changed = [dict(r) for r in (await session.execute(stmt)).mappings()]
            changed.extend(rows_changed)
            created += sum(1 for r in rows_changed if r["version"] == 1)
        await _stage(session, [_major_event(r) for r in changed])
    return created, len(changed) - created


async def search_majors(
    session: AsyncSession, *, q: str | None, level: str | None, offset: int, limit: int
) -> tuple[list[Major], int]:
    """By code prefix or name substring, optionally one level."""
    query = select(Major)
    if level:
        query = query.where(Major.level == level)
    if q:
        query = query.where(or_(Major.code.startswith(q, autoescape=True), Major.name.ilike(_like(q))))
    return await _page(session, query.order_by(Major.code), offset=offset, limit=limit)


async def majors_after(session: AsyncSession, *, after: str | None, limit: int) -> list[Major]:
    query = select(Major).order_by(Major.code).limit(limit)
    if after:
        query = query.where(Major.code > after)
    return list((await session.execute(query)).scalars())


async def _unknown_majors(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    if not codes:
        return []
    known = set((await session.execute(select(Major.code).where(Major.code.in_(codes)))).scalars())
    return [c for c in codes if c not in known]


# ---------------------------------------------------------------- organisations and certificates


async def create_organization(session: AsyncSession, *, name: str) -> Organization:
    """A training evaluation organisation; its id derives from its name."""
    async with session.begin():
        if await session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
            raise OrganizationExists(name)
        org = Organization(id=org_id_for(name), name=name)
        session.add(org)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise OrganizationExists(name) from exc
    return org


async def ensure_organization(session: AsyncSession, *, name: str) -> uuid.UUID:
    """Create the organisation unless it exists (for seeding)."""
    async with session.begin():
        stmt = pg_insert(Organization).values(id=org_id_for(name), name=name).on_conflict_do_nothing()
        await session.execute(stmt)
    return org_id_for(name)


async def list_organizations(session: AsyncSession, *, q: str | None, offset: int, limit: int) -> tuple[list[Any], int]:
    query = select(Organization)
    if q:
        query = query.where(Organization.name.ilike(_like(q)))
    return await _page(session, query.order_by(Organization.name), offset=offset, limit=limit)


@dataclass(frozen=True)
class CertificateView:
    certificate: Certificate
    org_name: str

    def data(self) -> CertificateData:
        c = self.certificate
        return CertificateData(
            id=str(c.id),
            name=c.name,
            level=c.level,  # type: ignore[arg-type]
            org_id=str(c.org_id),
            org_name=self.org_name,
            major_codes=list(c.major_codes),
            active=c.active,
        )

    def event(self) -> CertificateUpserted:
        cert = self.certificate
        return CertificateUpserted(subject=str(cert.id), subject_version=cert.version, data=self.data())


def _dedupe(codes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(c.strip().upper() for c in codes if c.strip()))


def _may_manage(principal: Principal, org_id: uuid.UUID) -> bool:
    return principal.is_operator or (principal.role is Role.org and principal.org_id == str(org_id))


async def create_certificate(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    level: str,
    org_id: uuid.UUID,
    major_codes: Sequence[str],
    certificate_id: uuid.UUID | None = None,
) -> CertificateView:
    """A certificate at one level, owned by one organisation (an org account: its own only)."""
    codes = _dedupe(major_codes)
    async with session.begin():
        org = await session.get(Organization, org_id)
        if org is None or not _may_manage(principal, org_id):
            raise NotFound("organization")
        unknown = await _unknown_majors(session, codes)
        if unknown:
            raise UnknownMajors(unknown)
        exists = select(Certificate.id).where(
            Certificate.org_id == org_id, Certificate.name == name, Certificate.level == level
        )
        if await session.scalar(exists) is not None:
            raise CertificateExists(name)
        cert = Certificate(
            id=certificate_id or uuid.uuid4(), name=name, level=level, org_id=org_id, major_codes=codes, version=1
        )
        session.add(cert)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise CertificateExists(name) from exc
        await session.refresh(cert)
        view = CertificateView(cert, org.name)
        await _stage(session, [view.event()])
    return view


async def set_certificate_majors(
    session: AsyncSession,
    *,
    principal: Principal,
    certificate_id: uuid.UUID,
    major_codes: Sequence[str],
    if_match: int | None,
) -> CertificateView:
    """Replace the majors allowed to take a certificate; an event only if the set changed. The change
    names the version it was based on (If-Match), so two editors cannot overwrite each other."""
    codes = _dedupe(major_codes)
    async with session.begin():
        cert = await session.get(Certificate, certificate_id, with_for_update=True)
        if cert is None or not _may_manage(principal, cert.org_id):
            raise NotFound("certificate")
        _require_version(if_match, current=cert.version, subject="certificate")
        unknown = await _unknown_majors(session, codes)
        if unknown:
            raise UnknownMajors(unknown)
        org_name = await session.scalar(select(Organization.name).where(Organization.id == cert.org_id)) or ""
        if set(codes) != set(cert.major_codes) or len(codes) != len(cert.major_codes):
            cert.major_codes = codes
            cert.version += 1
            cert.updated_at = func.now()
            await session.flush()
            await session.refresh(cert)
            await _stage(session, [CertificateView(cert, org_name).event()])
    return CertificateView(cert, org_name)


async def ensure_certificate(
    session: AsyncSession, *, org_id: uuid.UUID, name: str, level: str, major_codes: Sequence[str]
) -> tuple[uuid.UUID, bool]:
    """Create or correct a seeded certificate (id derived from org, name and level). Returns (id, changed)."""
    codes = _dedupe(major_codes)
    certificate_id = uuid.uuid5(uuid.NAMESPACE_URL, f"onex-cert:{org_id}:{name}:{level}")
    async with session.begin():
        org_name = await session.scalar(select(Organization.name).where(Organization.id == org_id))
        if org_name is None:
            raise NotFound("organization")
        unknown = await _unknown_majors(session, codes)
        if unknown:
            raise UnknownMajors(unknown)
        query = select(Certificate).where(
            Certificate.org_id == org_id, Certificate.name == name, Certificate.level == level
        )
        cert = (await session.execute(query.with_for_update())).scalar_one_or_none()
        if cert is not None and list(cert.major_codes) == codes:
            return cert.id, False
        if cert is None:
            cert = Certificate(id=certificate_id, name=name, level=level, org_id=org_id, major_codes=codes, version=1)
            session.add(cert)
        else:
            cert.major_codes, cert.version, cert.updated_at = codes, cert.version + 1, func.now()
        await session.flush()
        await session.refresh(cert)
        await _stage(session, [CertificateView(cert, org_name).event()])
    return cert.id, True


async def get_certificate(session: AsyncSession, *, certificate_id: uuid.UUID) -> CertificateView:
    row = (
        await session.execute(
            select(Certificate, Organization.name)
            .join(Organization, Organization.id == Certificate.org_id)
            .where(Certificate.id == certificate_id)
        )
    ).first()
    if row is None:
        raise NotFound("certificate")
    return CertificateView(row[0], row[1])


async def search_certificates(
    session: AsyncSession, *, q: str | None, org_id: uuid.UUID | None, level: str | None, offset: int, limit: int
) -> tuple[list[CertificateView], int]:
    """Public catalogue of certificates, by name substring, organisation and level."""
    query = select(Certificate, Organization.name).join(Organization, Organization.id == Certificate.org_id)
    if q:
        query = query.where(Certificate.name.ilike(_like(q)))
    if org_id:
        query = query.where(Certificate.org_id == org_id)
    if level:
        query = query.where(Certificate.level == level)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    level_order = case({lv: i for i, lv in enumerate(domain.CERTIFICATE_LEVELS)}, value=Certificate.level)
    query = query.order_by(Certificate.name, level_order, Certificate.id).offset(offset).limit(limit)
    rows = await session.execute(query)
    return [CertificateView(c, n) for c, n in rows.all()], int(total or 0)


async def certificates_after(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> list[CertificateView]:
    query = (
        select(Certificate, Organization.name)
        .join(Organization, Organization.id == Certificate.org_id)
        .order_by(Certificate.id)
        .limit(limit)
    )
    if after:
        query = query.where(Certificate.id > after)
    return [CertificateView(c, n) for c, n in (await session.execute(query)).all()]


# ---------------------------------------------------------------- pilots


async def record_pilot(session: AsyncSession, *, data: PilotGrantedData) -> bool:
    """Record (institution, year) as a pilot; runs inside the consumer's inbox transaction."""
    stmt = (
        pg_insert(Pilot)
        .values(
            institution_code=data.institution_code,
            year=data.year,
            institution_name=data.institution_name,
            province_code=data.province_code,
            city_code=data.city_code,
            application_id=data.application_id,
        )
        .on_conflict_do_nothing()
        .returning(Pilot.institution_code)
    )
    return (await session.execute(stmt)).first() is not None


async def list_pilots(
    session: AsyncSession, *, principal: Principal, year: int | None, province_code: str | None, offset: int, limit: int
) -> tuple[list[Pilot], int]:
    """Pilot institutions within the caller's scope (a department: its province or city)."""
    scope = scope_of(principal)
    if scope is None:
        raise NotFound("scope")
    if province_code and not scope.anywhere and province_code != scope.province_code:
        raise NotFound("province")
    query = select(Pilot)
    if year:
        query = query.where(Pilot.year == year)
    if province_code:
        query = query.where(Pilot.province_code == province_code)
    if scope.province_code:
        query = query.where(Pilot.province_code == scope.province_code)
    if scope.city_code:
        query = query.where(Pilot.city_code == scope.city_code)
    return await _page(session, query.order_by(Pilot.year.desc(), Pilot.institution_code), offset=offset, limit=limit)
