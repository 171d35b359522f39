"""How the review marks of one patch's several CVAT shapes merge."""

from __future__ import annotations

import importlib
from itertools import permutations

import pytest


@pytest.fixture(scope="module")
def archive(fixer_plugin):
    """The plugin's ``_archive`` module, as FiftyOne loaded it."""
    return importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._archive"
    )


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        (["unreviewed", "rejected", "unreviewed"], "rejected"),
        (["confirmed", "unreviewed"], "confirmed"),
        (["confirmed", "rejected"], "rejected"),
        (["unreviewed", "unreviewed"], "unreviewed"),
        (["rejected", "typo"], "typo"),
    ],
    ids=[
        "verdict-beats-unreviewed",
        "confirmed-beats-unreviewed",
        "rejected-beats-confirmed",
        "all-unreviewed",
        "unknown-kept-to-be-refused",
    ],
)
def test_marks_of_one_patch_merge_whatever_their_order(
    archive, marks, expected
):
    for order in permutations(marks):
        verdicts = {}
        for mark in order:
            archive._merge_mark(verdicts, "patch", mark)
        assert verdicts == {"patch": expected}, order
