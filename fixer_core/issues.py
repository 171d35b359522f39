"""Grouping recurring patches into named specific issues."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from .config import ERROR_TYPES

IssueKey = tuple[int, int, str]

# The issue of the labels shifted against their images: a finding of whole
# images, not of a class pair, so its given and suggested labels are this
SHIFTED = -1
SHIFTED_ISSUE = "labels shifted against their images"
# ... and that of the labels their neighbouring frames contradict
# (``fixer_core.neighbours``), whatever their classes
NEIGHBOURS = -2
NEIGHBOURS_ISSUE = "labels their neighbouring frames contradict"


@dataclass(frozen=True)
class SpecificIssue:
    """A (given, suggested, type) pattern that recurs across images.

    Ambiguous patches of a pair form one issue whichever way they go.
    """

    name: str
    error_type: str
    given_label: int
    suggested_label: int
    num_patches: int
    num_images: int
    num_pixels: int

    def to_dict(self) -> dict:
        """Returns the issue as a JSON-serializable dict."""
        return asdict(self)


def issue_key(given: int, suggested: int, error_type: str) -> IssueKey:
    """Returns the grouping key of a patch."""
    if error_type == "ambiguous":
        given, suggested = sorted((given, suggested))
    return given, suggested, error_type


def issue_name(
    given: int, suggested: int, error_type: str, class_names: Sequence[str]
) -> str:
    """Returns a readable name, e.g. ``"cushion missed in couch"``."""
    if given == SHIFTED:
        return SHIFTED_ISSUE
    if given == NEIGHBOURS:
        kind = "" if error_type == "general" else f" ({error_type})"
        return NEIGHBOURS_ISSUE + kind.replace("_", " ")
    g, s = class_names[given], class_names[suggested]
    if error_type == "false_negative":
        return f"{s} missed in {g}"
    if error_type == "ambiguous":
        a, b = sorted((g, s))
        return f"{a} vs {b} ambiguity"
    return f"{s} labelled as {g}"


class IssueTally:
    """Counts patches per pattern while the finder streams."""

    def __init__(self) -> None:
        self._patches: dict[IssueKey, int] = defaultdict(int)
        self._pixels: dict[IssueKey, int] = defaultdict(int)
        self._images: dict[IssueKey, set[int]] = defaultdict(set)

    def add(
        self,
        image_index: int,
        given: int,
        suggested: int,
        error_type: str,
        area: int,
    ) -> None:
        """Records one patch (of a shifted label: ``given`` and
        ``suggested`` are ``SHIFTED``)."""
        key = issue_key(given, suggested, error_type)
        self._patches[key] += 1
        self._pixels[key] += area
        self._images[key].add(image_index)

    def merge(self, other: IssueTally) -> None:
        """Adds the patches tallied by ``other`` (another shard's)."""
        for key, n in other._patches.items():
            self._patches[key] += n
            self._pixels[key] += other._pixels[key]
            self._images[key] |= other._images[key]

    def issues(
        self,
        class_names: Sequence[str],
        *,
        min_patches: int,
        min_images: int,
    ) -> list[SpecificIssue]:
        """Returns the specific issues, largest (in pixels) first. The
        shifted labels are an issue from their first image on: each is a
        finding of its own."""
        found = [
            SpecificIssue(
                name=issue_name(*key, class_names),
                error_type=key[2],
                given_label=key[0],
                suggested_label=key[1],
                num_patches=self._patches[key],
                num_images=len(self._images[key]),
                num_pixels=self._pixels[key],
            )
            for key in self._patches
            if key[0] == SHIFTED
            or (
                self._patches[key] >= min_patches
                and len(self._images[key]) >= min_images
            )
        ]
        return sorted(found, key=lambda i: (-i.num_pixels, i.name))

    def totals(self) -> dict[str, dict[str, int]]:
        """Returns patches and pixels per error type (every type, zeros
        included)."""
        out = {t: {"patches": 0, "pixels": 0} for t in ERROR_TYPES}
        for key, n in self._patches.items():
            entry = out[key[2]]
            entry["patches"] += n
            entry["pixels"] += self._pixels[key]
        return out


def issue_lookup(
    issues: Iterable[SpecificIssue],
) -> dict[IssueKey, str]:
    """Maps each issue's key to its name."""
    return {
        issue_key(i.given_label, i.suggested_label, i.error_type): i.name
        for i in issues
    }
