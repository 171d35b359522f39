"""Exact conversion between label maps and pixel-edge polygons.

Pixel ``(row, col)`` covers the square ``[col, col + 1] x [row, row + 1]``.
Outlines run along pixel edges, so their vertices are integer corner
coordinates (what CVAT's XML stores) and rasterising them at pixel centres
gives back exactly the pixels they were traced from: no tolerance.

A region's outline is its outer boundary only (CVAT polygons have no
holes). A label map is rebuilt by painting polygons from the largest to
the smallest area: whatever fills a region's holes is a smaller region
nested inside it, so it is painted later. Every pixel of a label map
belongs to some region, so the round trip is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Directions E, S, W, N in image coordinates (y points down); turning right
# is d + 1. Boundary edges keep their region on the right, so outer
# boundaries run clockwise on screen and have positive shoelace area.
_STEP = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])


def region_outlines(region: np.ndarray) -> list[np.ndarray]:
    """Outer outlines of the 4-connected components of a binary mask.

    Args:
        region: ``(H, W)`` bool mask.

    Returns:
        One ``(P, 2)`` int array of ``[x, y]`` corner coordinates per
        component, largest area first; ``P >= 4`` (corners only, no
        collinear vertices).

    Example:
        >>> region_outlines(np.ones((2, 3), dtype=bool))[0].tolist()
        [[0, 0], [3, 0], [3, 2], [0, 2]]
    """
    region = np.asarray(region, dtype=bool)
    if region.ndim != 2:
        raise ValueError(
            f"region must have a shape of (H, W), got {region.shape}"
        )
    starts, dirs = _boundary_edges(region)
    if len(dirs) == 0:
        return []
    following = _following_edges(starts, dirs, region.shape[1])
    outlines = []
    for loop in _cycles(following):
        turns = dirs[loop] != dirs[np.roll(loop, 1)]
        points = starts[loop[turns]]
        if polygon_area(points, signed=True) > 0:  # holes are negative
            outlines.append(points)
    outlines.sort(key=polygon_area, reverse=True)
    return outlines


def mask_to_polygons(mask: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Outlines every 4-connected region of an ``(H, W)`` label map.

    Returns:
        ``(value, points)`` pairs, largest area first, such that
        ``polygons_to_mask(mask_to_polygons(mask), mask.shape)`` equals
        ``mask`` exactly.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have a shape of (H, W), got {mask.shape}")
    polygons = [
        (int(value), points)
        for value in np.unique(mask)
        for points in region_outlines(mask == value)
    ]
    polygons.sort(key=lambda p: polygon_area(p[1]), reverse=True)
    return polygons


def polygon_area(points: np.ndarray, *, signed: bool = False) -> float:
    """Shoelace area of a polygon given as ``(P, 2)`` ``[x, y]`` points."""
    pts = np.asarray(points, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return area if signed else abs(area)


def rasterize_polygon(
    points: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Pixels whose centre lies inside a polygon (even-odd rule).

    Args:
        points: ``(P, 2)`` ``[x, y]`` vertices in pixel-corner coordinates
            (integer or not).
        shape: ``(H, W)`` of the output.

    Returns:
        ``(H, W)`` bool mask.
    """
    out = np.zeros(shape, dtype=bool)
    box = _rasterize_in_box(points, shape)
    if box is not None:
        (r0, c0), inside = box
        out[r0 : r0 + inside.shape[0], c0 : c0 + inside.shape[1]] = inside
    return out


def _rasterize_in_box(
    points: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """``rasterize_polygon`` within the polygon's bounding box: returns
    the box's ``(row, col)`` offset and its mask, or None if empty."""
    height, width = shape
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        return None
    # Pixel centres inside [min, max) of the vertices, clipped to the image
    lo = np.clip(np.ceil(pts.min(axis=0) - 0.5), 0, (width, height))
    hi = np.clip(np.ceil(pts.max(axis=0) - 0.5), 0, (width, height))
    (c0, r0), (c1, r1) = lo.astype(int), hi.astype(int)
    if c1 <= c0 or r1 <= r0:
        return None
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Rows whose centre y = r + 0.5 satisfies min(y0, y1) <= y < max(y0, y1)
    top = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), r0, r1).astype(int)
    bottom = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), r0, r1).astype(int)
    counts = np.where(y0 != y1, bottom - top, 0)
    total = int(counts.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(pts)), counts)
    first = np.cumsum(counts) - counts
    rows = top[edge] + np.arange(total) - first[edge]
    yc = rows + 0.5
    xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (
        y1[edge] - y0[edge]
    )
    # A crossing at xc flips the pixels whose centre is at or right of it
    w = c1 - c0
    cols = np.clip(np.ceil(xc - 0.5), c0, c1).astype(int) - c0
    flips = np.bincount(
        (rows - r0) * (w + 1) + cols, minlength=(r1 - r0) * (w + 1)
    ).reshape(r1 - r0, w + 1)
    return (r0, c0), (np.cumsum(flips[:, :w], axis=1) % 2).astype(bool)


def polygons_to_mask(
    polygons: Sequence[tuple[int, np.ndarray]],
    shape: tuple[int, int],
    *,
    bitmaps: Sequence[tuple[int, int, int, np.ndarray]] = (),
    fill_value: int | np.ndarray = 0,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray:
    """Paints ``(value, points)`` polygons into an ``(H, W)`` label map.

    Args:
        polygons: ``(value, (P, 2) [x, y] points)`` pairs.
        shape: ``(H, W)`` of the output.
        bitmaps: ``(value, x, y, mask)`` shapes drawn as bitmaps (a bool
            ``mask`` whose top-left pixel is ``(x, y)``), such as CVAT's
            brush masks.
        fill_value: the value of pixels no shape covers, or an ``(H, W)``
            label map whose values they keep.
        dtype: the output's dtype.

    Shapes are painted from the largest area (polygon area, or pixels of a
    bitmap) to the smallest, ties in the given order with polygons first,
    so a region drawn inside another one wins.
    """
    mask = _filled_mask(shape, fill_value, dtype)
    shapes = [
        (polygon_area(p), v, _rasterize_in_box(p, shape)) for v, p in polygons
    ]
    shapes += [
        (float(m.sum()), v, _clip_bitmap(x, y, m, shape))
        for v, x, y, m in bitmaps
    ]
    for _, value, box in sorted(shapes, key=lambda s: -s[0]):
        if box is not None:
            (r0, c0), inside = box
            h, w = inside.shape
            mask[r0 : r0 + h, c0 : c0 + w][inside] = value
    return mask


def _filled_mask(
    shape: tuple[int, int], fill_value: int | np.ndarray, dtype
) -> np.ndarray:
    """An ``(H, W)`` map of ``fill_value``, or a copy of it if it is one."""
    if isinstance(fill_value, np.ndarray):
        if fill_value.shape != tuple(shape):
            raise ValueError(
                f"fill_value map has a shape of {fill_value.shape}, "
                f"expected {tuple(shape)}"
            )
        return fill_value.astype(dtype, copy=True)
    return np.full(shape, fill_value, dtype=dtype)


def _clip_bitmap(
    x: int, y: int, bitmap: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """A bitmap shape cut to the image, as ``((row, col), mask)``."""
    height, width = shape
    bitmap = np.asarray(bitmap, dtype=bool)
    r0, c0 = max(y, 0), max(x, 0)
    r1 = min(y + bitmap.shape[0], height)
    c1 = min(x + bitmap.shape[1], width)
    if r1 <= r0 or c1 <= c0:
        return None
    return (r0, c0), bitmap[r0 - y : r1 - y, c0 - x : c1 - x]


def _boundary_edges(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start corners ``(E, 2)`` and directions ``(E,)`` of the unit edges
    between region pixels and the rest, region on the right."""
    p = np.pad(region, 1)
    inside = p[1:-1, 1:-1]
    sides = (
        (inside & ~p[:-2, 1:-1], (0, 0), 0),  # top edge, heading E
        (inside & ~p[1:-1, 2:], (1, 0), 1),  # right edge, heading S
        (inside & ~p[2:, 1:-1], (1, 1), 2),  # bottom edge, heading W
        (inside & ~p[1:-1, :-2], (0, 1), 3),  # left edge, heading N
    )
    starts, dirs = [], []
    for side, (dx, dy), direction in sides:
        rows, cols = np.nonzero(side)
        starts.append(np.stack([cols + dx, rows + dy], axis=1))
        dirs.append(np.full(len(rows), direction))
    return np.concatenate(starts), np.concatenate(dirs)


def _following_edges(
    starts: np.ndarray, dirs: np.ndarray, width: int
) -> np.ndarray:
    """Index of the edge that follows each edge on its outline.

    Where two outlines touch at a corner (pixels meeting diagonally), the
    right turn is taken, so each outline hugs one 4-connected component.
    """
    keys = ((starts[:, 1] * (width + 1) + starts[:, 0]) * 4) + dirs
    order = np.argsort(keys)
    sorted_keys = keys[order]
    ends = starts + _STEP[dirs]
    end_corner = ends[:, 1] * (width + 1) + ends[:, 0]
    following = np.full(len(dirs), -1)
    for turn in (1, 0, 3):  # right, straight, left
        want = end_corner * 4 + (dirs + turn) % 4
        pos = np.minimum(np.searchsorted(sorted_keys, want), len(keys) - 1)
        found = (sorted_keys[pos] == want) & (following < 0)
        following[found] = order[pos[found]]
    return following


def _cycles(following: np.ndarray) -> list[np.ndarray]:
    """Splits the permutation ``following`` into its cycles."""
    nxt = following.tolist()
    seen = bytearray(len(nxt))
    loops = []
    for start in range(len(nxt)):
        if seen[start]:
            continue
        loop, e = [], start
        while not seen[e]:
            seen[e] = 1
            loop.append(e)
            e = nxt[e]
        loops.append(np.array(loop))
    return loops
