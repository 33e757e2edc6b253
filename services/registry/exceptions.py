"""Domain errors of the registry service; the router maps each to a problem code."""

from __future__ import annotations


class RegistryError(Exception):
    code = "registry_error"

    def __init__(self, message: str = "", *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message or self.code)
        self.fields = fields or {}


class NotFound(RegistryError):
    """Absent, or in another scope (never tell which)."""

    code = "not_found"


class InstitutionNotFound(NotFound):
    code = "institution_not_found"


class InstitutionExists(RegistryError):
    code = "institution_exists"


class InstitutionNameTaken(RegistryError):
    code = "institution_name_taken"


class InvalidProfile(RegistryError):
    """Some given fields are malformed; `fields` maps each to a Chinese message."""

    code = "validation_error"


class VersionConflict(RegistryError):
    code = "version_conflict"


class PreconditionRequired(RegistryError):
    """A change of an editable resource must name the version it was based on (If-Match)."""

    code = "precondition_required"


class OrganizationExists(RegistryError):
    code = "organization_exists"


class CertificateExists(RegistryError):
    code = "certificate_exists"


class UnknownMajors(RegistryError):
    code = "major_not_found"

    def __init__(self, codes: list[str]) -> None:
        super().__init__("unknown majors", fields={"major_codes": "专业代码不存在：" + "、".join(codes)})
        self.codes = codes


class ImportFileInvalid(RegistryError):
    """The upload is not a readable CSV/XLSX with the expected columns."""

    code = "import_file_invalid"


class ImportConflict(RegistryError):
    """A concurrent change collided with the import; nothing of it was kept."""

    code = "conflict"
