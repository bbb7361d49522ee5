"""Learned anomaly detectors on rolling bar features: half-space trees, isolation forest.

Each row's bar is scored against a model of the ``window`` bars before it, as
the alert engine's rings give them: no state beyond the rings, so a stream
scores as a batch does and a checkpoint needs nothing new. A model's random
draws depend only on its parameters and seed (:func:`functools.lru_cache`),
the same for every row and call, so batch cuts do not change a score.

Both are computed with numpy over (rows, trees, window bars), one depth at a
time. scikit-learn's ``IsolationForest`` would fit one forest per bar and per
symbol; growing only the path of the scored bar through each tree (distributed
as growing the whole tree and following the bar: a path meets one node per
depth, each with its own draws) lets one array operation serve every symbol.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "FEATURES",
    "RANGE",
    "RETURN",
    "VOLUME",
    "average_path",
    "features",
    "half_space_scores",
    "isolation_scores",
]

#: The features of a bar, by slot.
FEATURES = ("return", "range", "volume")
RETURN = 0  # log(close / previous close)
RANGE = 1  # log(high / low)
VOLUME = 2  # log1p(volume)

#: Elements of a (rows, trees, window) array worked on at once.
_CHUNK = 1 << 18
#: The share of the half-space trees' space left on each side of the window's range.
_MARGIN = 0.25


def features(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Return the features of each bar and lag, lag 0 first: ``(lags, rows, 3)``.

    Args:
        close: closes at lags ``0 .. n + 1``, shape ``(n + 2, rows)``.
        high: highs at lags ``0 .. n``, shape ``(n + 1, rows)``.
        low: lows at lags ``0 .. n``.
        volume: volumes at lags ``0 .. n``.

    A price of 0 or less, or a missing value, gives a NaN or infinite feature.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.empty((*high.shape, len(FEATURES)))
        out[..., RETURN] = np.log(close[:-1] / close[1:])
        out[..., RANGE] = np.log(high / low)
        out[..., VOLUME] = np.log1p(volume)
    return out


def _chunks(rows: int, per_row: int) -> list[slice]:
    step = max(1, _CHUNK // max(1, per_row))
    return [slice(lo, min(lo + step, rows)) for lo in range(0, rows, step)]


# Half-space trees (Tan, Ting and Liu 2011; River's anomaly.HalfSpaceTrees).


@functools.lru_cache(maxsize=64)
def _half_space_trees(seed: int, trees: int, height: int, dims: int) -> tuple[np.ndarray, ...]:
    """Each tree's split dimension and point per node, nodes in heap order.

    As in the paper: per tree a random workspace per dimension (``s ~ U(0, 1)``,
    ``[s - 2 max(s, 1 - s), s + 2 max(s, 1 - s)]``), then per node a random
    dimension split at the middle of the node's workspace. Node ``i``'s
    children are ``2i + 1`` (below the split) and ``2i + 2``.
    """
    rng = np.random.default_rng(seed)
    nodes = 2**height - 1
    dim = rng.integers(0, dims, size=(trees, nodes))
    s = rng.uniform(size=(trees, dims))
    reach = 2.0 * np.maximum(s, 1.0 - s)
    lo, hi = np.empty((trees, nodes, dims)), np.empty((trees, nodes, dims))
    lo[:, 0], hi[:, 0] = s - reach, s + reach
    split = np.empty((trees, nodes))
    each = np.arange(trees)
    for i in range(nodes):
        q = dim[:, i]
        split[:, i] = mid = (lo[each, i, q] + hi[each, i, q]) / 2.0
        below, above = 2 * i + 1, 2 * i + 2
        if below < nodes:
            lo[:, below], hi[:, below] = lo[:, i], hi[:, i]
            lo[:, above], hi[:, above] = lo[:, i], hi[:, i]
            hi[each, below, q] = mid
            lo[each, above, q] = mid
    dim.setflags(write=False)
    split.setflags(write=False)
    return dim, split


def _scaled(x: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """This bar's features and the window's, the window's range per row and feature to [1/4, 3/4].

    The trees' space is [0, 1]: a quarter of it lies beyond the window's range
    on each side, so the trees split there and a bar outside that range is
    isolated from the window's bars at once (scaled to the whole of [0, 1], it
    shares every node with the window's extreme bars down to the second split
    on that feature). This bar is clipped to [0, 1]. A flat feature scales to
    1/2, and this bar's to 1/2 when it equals the window's value, else to 0 or 1.
    """
    lo, hi = window.min(axis=1), window.max(axis=1)
    span = (hi - lo) / (1.0 - 2.0 * _MARGIN)
    flat = span == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(flat[:, None], 0.5, _MARGIN + (window - lo[:, None]) / span[:, None])
        off = np.where(x > lo, 1.0, np.where(x < lo, 0.0, 0.5))
        v = np.where(flat, off, np.clip(_MARGIN + (x - lo) / span, 0.0, 1.0))
    return v, w


def half_space_scores(
    x: np.ndarray, window: np.ndarray, trees: int, height: int, seed: int
) -> np.ndarray:
    """Return the half-space-tree score of each row's bar against its window, in [0, 1].

    As River's ``HalfSpaceTrees.score_one``: down each tree, the window bars
    in this bar's node times ``2 ** depth`` add up, until a node holds fewer
    than a tenth of the window or the leaf; the score is one minus the sum
    over trees over its largest possible value. High: anomalous.

    Args:
        x: this bar's features, ``(rows, features)``.
        window: the window's features, ``(rows, bars, features)``, finite.
        trees: number of trees.
        height: depth of the leaves.
        seed: seed of the trees' random structure.
    """
    rows, bars, dims = window.shape
    dim, split = _half_space_trees(seed, trees, height, dims)
    v, w = _scaled(x, window)
    limit = 0.1 * bars
    each = np.arange(trees)
    total = np.empty(rows)
    for part in _chunks(rows, trees * bars):
        xs, ws = v[part], w[part].transpose(0, 2, 1)  # (rows, dims, bars)
        m = len(xs)
        row = np.arange(m)[:, None]
        node = np.zeros((m, trees), np.int64)
        inside = np.ones((m, trees, bars), bool)
        mass = np.full((m, trees), bars)
        score = np.zeros((m, trees))
        walking = np.ones((m, trees), bool)
        for depth in range(height):
            score += np.where(walking, mass * 2.0**depth, 0.0)
            walking &= mass >= limit
            if not walking.any():
                break
            q, at = dim[each, node], split[each, node]
            side = xs[row, q] >= at
            inside &= (ws[row, q] >= at[..., None]) == side[..., None]  # (rows, trees, bars)
            mass = inside.sum(axis=2)
            node = 2 * node + 1 + side
        else:
            score += np.where(walking, mass * 2.0**height, 0.0)
        total[part] = score.sum(axis=1)
    return 1.0 - total / (trees * bars * (2.0 ** (height + 1) - 1.0))


# Isolation forest (Liu, Ting and Zhou 2008).


@functools.lru_cache(maxsize=16)
def average_path(n: int) -> np.ndarray:
    """``c(k)`` for ``k = 0 .. n``: the mean depth of an unsuccessful search in a BST of k keys.

    ``c(k) = 2 H(k - 1) - 2 (k - 1) / k`` with exact harmonic numbers, so
    ``c(2) = 1``; ``c(0) = c(1) = 0``.
    """
    k = np.arange(n + 1, dtype=np.float64)
    harmonic = np.concatenate([[0.0, 0.0], np.cumsum(1.0 / np.arange(1, max(n, 1)))])[: n + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(k > 1, 2.0 * harmonic - 2.0 * (k - 1.0) / k, 0.0)
    c.setflags(write=False)
    return c


@functools.lru_cache(maxsize=64)
def _isolation_draws(seed: int, trees: int, height: int, dims: int) -> tuple[np.ndarray, ...]:
    """Per tree and depth: an order of the dimensions, and where the split falls (``u``).

    The split dimension is the first in the order on which the node's bars
    differ (as scikit-learn draws features until one is not constant); the
    split point is ``min + u * (max - min)`` of the node's bars on it.
    """
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.broadcast_to(np.arange(dims), (trees, height, dims)), axis=2)
    u = rng.uniform(size=(trees, height))
    order.setflags(write=False)
    u.setflags(write=False)
    return order, u


def isolation_scores(x: np.ndarray, window: np.ndarray, trees: int, seed: int) -> np.ndarray:
    """Return the isolation-forest score of each row's bar among its window's bars, in (0, 1].

    Each tree is grown on the window's bars and this one (``n = bars + 1``)
    to the height limit ``ceil(log2(n))``, along this bar's path only: ``h``
    is the depth at which the bar's node holds the bar alone, plus ``c`` of
    the bars in it when they are all alike or at the height limit; ``score =
    2 ** (-mean(h) / c(n))``: about 0.5 for a bar like the others, towards 1
    for one isolated at once. The bar is in the sample it is isolated from: a
    forest fitted on the window alone puts a bar far beyond the window's range
    in the node of the window's extreme bars, no shallower than theirs.

    Args:
        x: this bar's features, ``(rows, features)``.
        window: the window's features, ``(rows, bars, features)``, finite.
        trees: number of trees.
        seed: seed of the trees' random draws.
    """
    rows, bars, dims = window.shape
    height = int(np.ceil(np.log2(bars + 1)))
    order, u = _isolation_draws(seed, trees, height, dims)
    c = average_path(bars + 1)
    mean = np.empty(rows)
    for part in _chunks(rows, trees * bars):
        mean[part] = _isolation_depths(x[part], window[part], order, u, c).mean(axis=1)
    return 2.0 ** (-mean / c[bars + 1])


def _isolation_depths(
    x: np.ndarray, window: np.ndarray, order: np.ndarray, u: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Each row's path length ``h`` in each tree: ``(rows, trees)``.

    The window's bars in this bar's node are a mask; their lowest and highest
    value on a dimension come from the ranks of the window's values (small
    integers: ``max(inside * rank)``), cheaper than a masked reduction of the
    values themselves.
    """
    rows, bars, dims = window.shape
    trees, height = u.shape
    row = np.arange(rows)[:, None]
    ranks, ordered = _ranks(window)  # (rows, dims, bars) each
    up = (ranks + 1).astype(np.int16)  # max(inside * up) - 1: the highest rank inside
    back = (bars - ranks).astype(np.int16)  # bars - max(inside * back): the lowest
    values = np.ascontiguousarray(window.transpose(0, 2, 1))

    def span(node: np.ndarray, r: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest value on ``q`` of the node: its window bars and this bar."""
        low = bars - (node * back[r, q]).max(axis=-1)
        high = (node * up[r, q]).max(axis=-1) - 1
        mine = x[r, q]
        lo = np.minimum(ordered[r, q, np.clip(low, 0, bars - 1)], mine)
        hi = np.maximum(ordered[r, q, np.clip(high, 0, bars - 1)], mine)
        return lo, hi

    inside = np.ones((rows, trees, bars), bool)
    size = np.full((rows, trees), bars)  # window bars in the node, besides this one
    h = np.zeros((rows, trees))
    growing = np.ones((rows, trees), bool)
    for depth in range(height):
        q = np.array(np.broadcast_to(order[:, depth, 0], (rows, trees)))
        lo, hi = span(inside, row, q)
        alike = growing & (size > 0) & (lo >= hi)
        for k in range(1, dims):  # the next dimension in this depth's order where bars differ
            if not alike.any():
                break
            i, t = np.nonzero(alike)
            qk = order[t, depth, k]
            lk, hk = span(inside[i, t], i, qk)
            differ = hk > lk
            i, t = i[differ], t[differ]
            q[i, t], lo[i, t], hi[i, t] = qk[differ], lk[differ], hk[differ]
            alike[i, t] = False
        leaf = growing & ((size == 0) | alike)
        h[leaf] = depth + c[size[leaf] + 1]
        growing &= ~leaf
        if not growing.any():
            return h
        at = lo + u[:, depth] * (hi - lo)
        below = x[row, q] < at
        inside &= (values[row, q] < at[..., None]) == below[..., None]
        size = np.count_nonzero(inside, axis=2)
    h[growing] = height + c[size[growing] + 1]
    return h


def _ranks(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's rank in its row and dimension (equal values, equal rank), and the sorted values.

    Both ``(rows, dims, bars)``: ``ordered[r, d, ranks[r, d, j]] == window[r, j, d]``.
    """
    rows, bars, dims = window.shape
    perm = np.argsort(window, axis=1, kind="stable")
    ordered = np.take_along_axis(window, perm, axis=1)
    place = np.broadcast_to(np.arange(bars)[:, None], ordered.shape)
    new = np.ones(ordered.shape, bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(new, place, 0), axis=1)  # a tie's first place
    ranks = np.empty(window.shape, np.int64)
    np.put_along_axis(ranks, perm, first, axis=1)
    return (
        np.ascontiguousarray(ranks.transpose(0, 2, 1)),
        np.ascontiguousarray(ordered.transpose(0, 2, 1)),
    )
