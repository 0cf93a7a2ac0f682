"""Token holders' names: they become the actors of what the tokens record, so plain text only."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidInput
from ledger.tokens import check_name


@pytest.mark.parametrize(
    "name",
    ["", " padded", "two\nlines", "\x1b]0;title", "=HYPERLINK(1)", "@SUM(A1)", "x" * 101],
    ids=["empty", "leading-space", "newline", "escape", "formula", "at-formula", "too-long"],
)
def test_a_token_name_that_is_not_plain_text_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="token name"):
        check_name(name)


def test_a_plain_token_name_is_kept() -> None:
    assert check_name("Jane Doe (GDS security)") == "Jane Doe (GDS security)"
