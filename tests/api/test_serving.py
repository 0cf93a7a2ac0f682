"""A serving process tunes its cycle collector once it serves (api/serving.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.serving import COLLECTOR_THRESHOLDS, settle_collector


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector, as it was, afterwards."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_what_start_up_made_is_out_of_the_collectors_reach() -> None:
    made_at_start_up = [[]], {"schemas": []}
    assert all(gc.is_tracked(o) for o in made_at_start_up)
    settle_collector()
    within_reach = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in within_reach for o in made_at_start_up)


@pytest.mark.usefixtures("collector")
def test_a_collection_waits_for_ten_thousand_new_objects() -> None:
    settle_collector()
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS == (10_000, 50, 100)
