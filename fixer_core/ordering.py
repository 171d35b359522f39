"""Frames put back in the order of their views.

The neighbouring frames' evidence (``fixer_core.neighbours``) reads each
image between the images before and after it. A video's frames stored in
any other order (shuffled splits, hashed file names, a view sorted by
another field) give it unrelated images, or views of one scene from
both sides of the same moment; there they testify to nothing, or
against correct labels (BENCHMARKS.md, "Frames out of time order").

:func:`view_order` chains near-duplicate views (``same_view``) the way
a video chains its frames: each image next to at most two others, the
closest links first, no loops. A video in time order whose consecutive
frames are near-duplicates is a path of such links already, and is left
as it is; in a sparser one (CamVid's train frames, 1 s apart) the frames
where the camera stood still may be reordered among themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .neighbours import MIN_VIEW_CORRELATION, lies_between, same_view

# Each image is linked to one of its closest views: a frame's are the
# frames just before and after it (two each way, for a skipped frame)
CANDIDATES = 4
# The search compares every pair of images, in blocks of this many rows
# (50 MB of correlations at MAX_IMAGES); beyond this many images (about a
# minute on two cores) the given order is kept
BLOCK = 256
MAX_IMAGES = 50_000


def view_order(
    signatures: Sequence[np.ndarray | None] | np.ndarray,
) -> np.ndarray | None:
    """An order of the images that puts near-duplicate views next to each
    other, as a video's frames are, where more images then lie between
    their neighbours as frames in time order do; ``None`` where the given
    order has as many (a video in time order, or images of no shared
    scene), or beyond ``MAX_IMAGES`` images.

    Args:
        signatures: ``(N, D)`` the images' signatures
            (``fixer_core.neighbours.image_signature``; a row may be
            ``None`` where unknown: that image links to none).

    Returns:
        ``(N,)`` indices into the images, in the new order: each chain of
        views from one end to the other, the chains and the unlinked
        images in the order of their first image. Deterministic.

    Example:
        >>> angles = np.array([0.2, 0.0, 0.3, 0.1, 0.4])  # frames, shuffled
        >>> views = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        >>> view_order(views)
        array([1, 3, 0, 2, 4])
        >>> print(view_order(views[[1, 3, 0, 2, 4]]))  # in time order
        None
    """
    if len(signatures) > MAX_IMAGES:
        return None
    views = _stacked(signatures)
    order = _walked(len(views), _chained(views))
    if _framed(views[order]) <= _framed(views):
        return None
    return order


def _stacked(signatures) -> np.ndarray:
    """``(N, D)`` float32 signatures, zero rows where unknown."""
    rows = [None if s is None else np.ravel(s) for s in signatures]
    width = max((len(r) for r in rows if r is not None), default=0)
    out = np.zeros((len(rows), width), np.float32)
    for i, row in enumerate(rows):
        if row is not None:
            out[i] = row
    return out


def _framed(views: np.ndarray) -> int:
    """How many images lie between near-duplicate neighbours, as frames
    in time order do: the images whose neighbouring frames' evidence the
    finder reads (``same_view``, ``lies_between``)."""
    triples = zip(views[:-2], views[1:-1], views[2:], strict=True)
    return sum(
        same_view(before, after) and lies_between(before, image, after)
        for before, image, after in triples
    )


def _chained(views: np.ndarray) -> list[tuple[int, int]]:
    """The links ``(i, j)`` of the chains: among each image's
    ``CANDIDATES`` closest views at ``MIN_VIEW_CORRELATION`` or more, the
    closest first, where both images have fewer than two links and are
    not chained already (a greedy path cover)."""
    n = len(views)
    k = min(CANDIDATES, n - 1)
    found: dict[tuple[int, int], float] = {}
    for start in range(0, n if k > 0 else 0, BLOCK):
        near = views[start : start + BLOCK] @ views.T
        rows = np.arange(len(near))
        near[rows, start + rows] = -np.inf
        best = np.argpartition(-near, k - 1, axis=1)[:, :k]
        for row, columns in zip(rows, best, strict=True):
            for j in columns:
                if near[row, j] >= MIN_VIEW_CORRELATION:
                    pair = tuple(sorted((start + int(row), int(j))))
                    found[pair] = float(near[row, j])
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    degree = np.zeros(n, np.int64)
    links = []
    for (i, j), _ in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])):
        if degree[i] < 2 and degree[j] < 2 and find(i) != find(j):
            root[find(i)] = find(j)
            degree[i] += 1
            degree[j] += 1
            links.append((i, j))
    return links


def _walked(n: int, links: list[tuple[int, int]]) -> np.ndarray:
    """The images along the chains of ``links``, each chain from its end
    with the lower index, in the order of those ends."""
    linked: list[list[int]] = [[] for _ in range(n)]
    for i, j in links:
        linked[i].append(j)
        linked[j].append(i)
    seen = np.zeros(n, bool)
    order = []
    for end in range(n):
        if seen[end] or len(linked[end]) == 2:
            continue
        previous, image = -1, end
        while image >= 0:
            seen[image] = True
            order.append(image)
            ahead = [j for j in linked[image] if j != previous]
            previous, image = image, ahead[0] if ahead else -1
    return np.asarray(order, dtype=np.int64)
