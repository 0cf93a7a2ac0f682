"""Configuration from the environment: defaults, and a clear refusal of what cannot be used."""

from __future__ import annotations

import pytest

from ledger.config import Config
from ledger.errors import InvalidInput
from ledger.store import in_memory


def test_an_empty_environment_gives_the_sqlite_default_and_a_pool_of_20() -> None:
    config = Config.from_env({})
    assert (config.database_url, config.port, config.db_pool_size) == ("sqlite:///policy-ledger.db", 8080, 20)


def test_the_pool_size_comes_from_ledger_db_pool_size() -> None:
    assert Config.from_env({"LEDGER_DB_POOL_SIZE": "48"}).db_pool_size == 48


@pytest.mark.parametrize("size", ["0", "-3", "twenty", "1001", "²"])
def test_a_pool_size_that_cannot_be_used_is_refused_saying_what_is_allowed(size: str) -> None:
    with pytest.raises(InvalidInput, match="must be a whole number from 1 to 1000"):
        Config.from_env({"LEDGER_DB_POOL_SIZE": size})


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a port number"):
        Config.from_env({"LEDGER_PORT": "http"})


def test_one_worker_by_default_and_more_from_ledger_workers() -> None:
    assert (Config.from_env({}).workers, Config.from_env({"LEDGER_WORKERS": "2"}).workers) == (1, 2)


@pytest.mark.parametrize("workers", ["0", "two", "65", "²"])
def test_a_worker_count_that_cannot_be_used_is_refused_saying_what_is_allowed(workers: str) -> None:
    with pytest.raises(InvalidInput, match="must be a whole number from 1 to 64"):
        Config.from_env({"LEDGER_WORKERS": workers})


def test_reads_of_ten_thousand_questions_remembered_by_default_and_none_with_zero() -> None:
    sizes = [Config.from_env(env).read_cache for env in ({}, {"LEDGER_READ_CACHE": "0"})]
    assert sizes == [10_000, 0]


@pytest.mark.parametrize("size", ["-1", "lots", "1000001", "²"])
def test_a_read_cache_size_that_cannot_be_used_is_refused_saying_what_is_allowed(size: str) -> None:
    with pytest.raises(InvalidInput, match=r"must be a whole number from 0 \(off\) to 1000000"):
        Config.from_env({"LEDGER_READ_CACHE": size})


def test_idempotency_keys_are_remembered_a_day_by_default_and_for_ever_with_zero() -> None:
    hours = [Config.from_env(env).idempotency_hours for env in ({}, {"LEDGER_IDEMPOTENCY_HOURS": "0"})]
    assert hours == [24, 0]


@pytest.mark.parametrize("hours", ["-1", "1.5", "87841", "²"])
def test_idempotency_hours_that_cannot_be_used_are_refused_saying_what_is_allowed(hours: str) -> None:
    with pytest.raises(InvalidInput, match=r"whole number of hours from 0 \(keys remembered for ever\) to 87840"):
        Config.from_env({"LEDGER_IDEMPOTENCY_HOURS": hours})


@pytest.mark.parametrize(
    ("url", "memory"),
    [("sqlite:///:memory:", True), ("sqlite://", True), ("sqlite:///ledger.db", False),
     ("sqlite:////:memory:", False), ("postgresql://postgres@localhost/ledger", False)],
)  # fmt: skip
def test_an_in_memory_database_is_told_from_a_file(url: str, memory: bool) -> None:
    assert in_memory(url) is memory


@pytest.mark.parametrize("port", ["0", "65536", "99999999999999999999"])
def test_a_port_beyond_the_port_range_is_refused(port: str) -> None:
    with pytest.raises(InvalidInput, match="1 to 65535"):
        Config.from_env({"LEDGER_PORT": port})


def test_an_unknown_log_level_is_refused_and_a_known_one_taken_in_any_case() -> None:
    with pytest.raises(InvalidInput, match="debug, info, warning, error, critical"):
        Config.from_env({"LEDGER_LOG_LEVEL": "bogus"})
    assert Config.from_env({"LEDGER_LOG_LEVEL": "WARNING"}).log_level == "warning"
