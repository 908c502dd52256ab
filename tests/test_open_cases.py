"""Open items by age: the age buckets' edges (days are local calendar days)."""

from __future__ import annotations

import pytest

from sandboxwatch.api.open_cases import BUCKETS, bucket


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (-1, "d0_1"),
        (0, "d0_1"),
        (1, "d1_7"),
        (6, "d1_7"),
        (7, "d7_30"),
        (29, "d7_30"),
        (30, "d30_plus"),
        (900, "d30_plus"),
    ],
)
def test_age_buckets(age: int, expected: str) -> None:
    assert bucket(age) == expected


def test_buckets_cover_every_age_once() -> None:
    names = [bucket(age) for age in range(0, 400)]
    assert sorted(set(names)) == sorted(name for name, _, _ in BUCKETS)
    assert names == sorted(names, key=[name for name, _, _ in BUCKETS].index)  # older never in a newer bucket
