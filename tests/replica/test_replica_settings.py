"""The replica settings and labels, without servers: what an operator types and what
`bourse status` and the metrics call each replica."""

from __future__ import annotations

import pytest

from bourse.settings import Settings
from models.replicas import lsn_int, replica_name, replica_urls


def test_database_replica_url_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URL",
        "postgresql://bourse:pw@10.0.0.12:5432/bourse, postgresql://bourse:pw@10.0.0.13/bourse",
    )
    monkeypatch.setenv("BOURSE_REPLICA_MAX_LAG_SECONDS", "2.5")
    settings = Settings()
    assert replica_urls(settings.database_replica_url) == [
        "postgresql://bourse:pw@10.0.0.12:5432/bourse",
        "postgresql://bourse:pw@10.0.0.13/bourse",
    ]
    assert settings.replica_max_lag_seconds == 2.5
    assert replica_urls(None) == []
    assert replica_urls(" , ") == []


def test_a_replica_is_named_without_its_password() -> None:
    assert replica_name("postgresql://bourse:s3cret@10.0.0.12:6432/bourse") == (
        "10.0.0.12:6432/bourse"
    )
    assert replica_name("postgresql://bourse@db/bourse") == "db:5432/bourse"
    multi = "postgresql://bourse:s3cret@/bourse?host=a:5432&host=b:5433"
    assert replica_name(multi) == "a:5432,b:5433/bourse"
    assert "s3cret" not in replica_name(multi)


def test_wal_positions_compare_as_byte_offsets() -> None:
    assert lsn_int("0/0") == 0
    assert lsn_int("0/16B3748") == 0x16B3748
    assert lsn_int("1/0") == 1 << 32
    assert lsn_int("16/B374D848") > lsn_int("16/B374D847") > lsn_int("15/FFFFFFFF")
