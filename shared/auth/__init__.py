from shared.auth.principal import Principal, Role

__all__ = ["Principal", "Role"]
