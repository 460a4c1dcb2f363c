"""The false-alarm ledger attributes each stretch of scenes to the commits that ran it."""

from __future__ import annotations

from benchmarks.throwing_fa_ledger import (
    Segment,
    Snapshot,
    code_identity,
    segments_from_runs,
    segments_from_snapshots,
)


def test_each_committed_version_owns_the_scenes_since_the_previous_one() -> None:
    snaps = [
        Snapshot(1756, "aaa", ()),
        Snapshot(1984, "bbb-dirty", ("aaa",)),
        # resumed at ccc, then (uncommitted) again at ddd: that stretch is theirs together
        Snapshot(4842, "ddd", ("aaa", "bbb-dirty", "ccc-dirty")),
        Snapshot(4842, "ddd", ("aaa", "bbb-dirty", "ccc-dirty")),  # the working copy again
    ]
    assert segments_from_snapshots(list(reversed(snaps))) == [
        Segment(0, 1756, ("aaa",)),
        Segment(1756, 228, ("bbb",)),
        Segment(1984, 2858, ("ccc", "ddd")),
    ]


def test_a_first_version_from_several_runs_names_them_all() -> None:
    snaps = [Snapshot(360, "b", ("a-dirty",))]
    assert segments_from_snapshots(snaps) == [Segment(0, 360, ("a", "b"))]


def test_runs_recorded_by_the_runner_are_taken_as_written() -> None:
    runs = [
        {"commit": "x", "first_seed": 13100, "scenes": 40},
        {"commit": "y-dirty", "first_seed": 13140, "scenes": 0},
        {"commit": "z", "first_seed": 13140, "scenes": 7},
    ]
    assert segments_from_runs(runs, 13100) == [Segment(0, 40, ("x",)), Segment(40, 7, ("z",))]


def test_wording_does_not_change_an_analysis_but_code_does() -> None:
    a = 'def f(x):\n    """Doc."""\n    return x * 2  # twice\n'
    b = 'def f(x):\n    """Other words."""\n\n    return x * 2\n'
    c = 'def f(x):\n    """Doc."""\n    return x * 3\n'
    assert code_identity(a) == code_identity(b)
    assert code_identity(a) != code_identity(c)
