"""Which constraint an ``IntegrityError`` violated, by name (never by matching message text).

PostgreSQL reports the violated constraint's (or unique index's) name with the error; asyncpg
exposes it as ``constraint_name`` on its exception, which SQLAlchemy's adapter keeps as the
cause of the DBAPI error in ``IntegrityError.orig``. Names are stable: ``models.base`` sets the
naming convention and explicit indexes name themselves.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint ``exc`` violated, or None if the driver did not say."""
    seen: object = exc.orig
    for _ in range(3):  # the DBAPI error, then its cause (asyncpg's), at most one more
        if seen is None:
            break
        name = getattr(seen, "constraint_name", None)
        if isinstance(name, str) and name:
            return name
        seen = getattr(seen, "__cause__", None)
    return None
