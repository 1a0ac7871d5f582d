"""Local search on an open path whose first block is fixed: 2-opt and Or-opt moves on K-nearest-neighbour lists.

``improve(z, order, nbr)`` shortens an order (cost: the sum of squared L2 jumps, ``timeline.path_cost``) by rounds
of moves evaluated for every position at once with NumPy:

* 2-opt: reverse a stretch of the path so that a block becomes adjacent to one of its K nearest neighbours;
* Or-opt: move a run of 1-3 consecutive blocks (either way round) next to one of its ends' nearest neighbours.

Each round computes the gain of every candidate move (only candidates whose new neighbour edge is shorter than an
edge it removes: the usual neighbour-list pruning), keeps the best moves whose touched positions do not overlap
(so their gains add exactly) and applies them together. Rounds stop when nothing improves, after ``max_rounds``
or, only when a caller asks for it, after ``time_limit`` seconds (a clock makes the result depend on the load).
Position 0 never moves (the causal anchor). With ``labels`` a move is refused when it would add a label switch
between neighbours, so an order with K - 1 switches keeps them.

Memory O(N * K); one round costs O(N * K * D) vectorised work plus a Python pass over the improving candidates.
Knows nothing about encoders, clustering or how the starting order or the lists were made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import DataError

EPS = 1e-6  # a move must gain more than float32 rounding of its four edges


@dataclass
class _Moves:
    """Candidate moves of one kind: gain, the positions they touch [lo, hi], and how to apply them."""
    gain: np.ndarray     # (M,) float32
    lo: np.ndarray       # (M,) first touched position
    hi: np.ndarray       # (M,) last touched position
    a: np.ndarray        # (M,) 2-opt: first reversed position; Or-opt: segment start
    b: np.ndarray        # (M,) 2-opt: last reversed position; Or-opt: insertion edge start t
    seg: int             # 0: 2-opt; L > 0: Or-opt segment length
    flip: np.ndarray     # (M,) bool: Or-opt segment inserted reversed


def _pd(z: np.ndarray, x: np.ndarray, y: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Squared L2 distance of node pairs (x[i], y[i]), (M,) float32, in row chunks."""
    out = np.empty(len(x), dtype=np.float32)
    for a in range(0, len(x), chunk):
        d = z[x[a:a + chunk]] - z[y[a:a + chunk]]
        out[a:a + chunk] = np.einsum("ij,ij->i", d, d)
    return out


def _switch(lab: np.ndarray | None, x: np.ndarray, y: np.ndarray) -> np.ndarray | int:
    return 0 if lab is None else (lab[x] != lab[y]).astype(np.int8)


def _two_opt(z: np.ndarray, o: np.ndarray, pos: np.ndarray, nbr: np.ndarray, nd: np.ndarray, e: np.ndarray,
             lab: np.ndarray | None, span: int) -> _Moves:
    """Reversals o[lo..hi] that make a block adjacent to a list neighbour c. e: (N,) edge i -> i+1 (e[N-1] = 0)."""
    n = len(o)
    # Succ form: block a = o[i] gains edge (a, c) with c = o[j], j >= i + 2: reverse [i+1, j].
    # Pred form: block a = o[i] gains edge (c, a) with c = o[j], 1 <= j <= i - 2: reverse [j, i-1].
    i_s, k_s = np.nonzero((nd[o[:-1]] < e[:-1, None]) & (nbr[o[:-1]] >= 0))
    i_p, k_p = np.nonzero((nd[o[1:]] < e[:-1, None]) & (nbr[o[1:]] >= 0))
    i_p = i_p + 1
    j_s, j_p = pos[nbr[o[i_s], k_s]], pos[nbr[o[i_p], k_p]]
    ok_s = (j_s >= i_s + 2) & (j_s - i_s <= span)
    ok_p = (j_p >= 1) & (j_p <= i_p - 2) & (i_p - j_p <= span)
    lo = np.concatenate([i_s[ok_s] + 1, j_p[ok_p]])
    hi = np.concatenate([j_s[ok_s], i_p[ok_p] - 1])
    # The list edge each move adds: (o[lo-1], o[hi]) in succ form, (o[lo], o[hi+1]) in pred form.
    near = np.concatenate([nd[o[i_s], k_s][ok_s], nd[o[i_p], k_p][ok_p]])
    succ = np.concatenate([np.ones(ok_s.sum(), bool), np.zeros(ok_p.sum(), bool)])
    tail = hi < n - 1                                    # an edge after the stretch exists
    hn = np.minimum(hi + 1, n - 1)
    # Removed: (lo-1, lo) and (hi, hi+1). Added: (o[lo-1], o[hi]) and (o[lo], o[hi+1]); one of them is `near`.
    other = np.where(succ, tail, True)
    ox = np.where(succ, o[lo], o[lo - 1])
    oy = np.where(succ, o[hn], o[hi])
    far = np.where(other, _pd(z, ox, oy), 0.0)
    gain = e[lo - 1] + np.where(tail, e[hi], 0.0) - near - far
    if lab is not None:
        added = _switch(lab, o[lo - 1], o[hi]) + np.where(tail, _switch(lab, o[lo], o[hn]), 0)
        removed = _switch(lab, o[lo - 1], o[lo]) + np.where(tail, _switch(lab, o[hi], o[hn]), 0)
        gain = np.where(added <= removed, gain, -1.0)
    return _Moves(gain.astype(np.float32), lo - 1, hn, lo, hi, 0, np.zeros(len(lo), bool))


def _or_opt(z: np.ndarray, o: np.ndarray, pos: np.ndarray, nbr: np.ndarray, nd: np.ndarray, e: np.ndarray,
            lab: np.ndarray | None, span: int, seg: int) -> _Moves:
    """Moves of the run o[s..s+seg-1] (s >= 1) into another edge (o[t], o[t+1]) next to a list neighbour."""
    n = len(o)
    s = np.arange(1, n - seg + 1)
    x, y = o[s], o[s + seg - 1]                          # the run's first and last block
    has_n = s + seg < n
    nx = o[np.minimum(s + seg, n - 1)]
    close = np.where(has_n, _pd(z, o[s - 1], nx), 0.0)
    r = e[s - 1] + np.where(has_n, e[s + seg - 1], 0.0) - close   # gain of cutting the run out
    parts = []
    # (end of the run that meets c, is c before the run, flip): c - x..y (after c), y..x - c (before c, flipped),
    # x..y - c (before c), c - y..x (after c, flipped). A single block has no flipped variants.
    for end, after, flip in ((0, True, False), (0, False, True), (1, False, False), (1, True, True)):
        if seg == 1 and flip:
            continue
        me = x if end == 0 else y
        ii, kk = np.nonzero((nd[me] < r[:, None]) & (nbr[me] >= 0))
        c = nbr[me[ii], kk]
        j = pos[c]
        t = j if after else j - 1                         # insertion edge (o[t], o[t+1])
        si = s[ii]
        ok = (t >= 0) & ((t <= si - 2) | (t >= si + seg)) & (np.abs(t - si) <= span)
        ii, kk, t, si = ii[ok], kk[ok], t[ok], si[ok]
        first = np.where(flip, y[ii], x[ii])              # block joined to o[t]
        last = np.where(flip, x[ii], y[ii])               # block joined to o[t+1]
        has_v = t < n - 1
        tv = np.minimum(t + 1, n - 1)
        near = nd[me[ii], kk]
        if after:                                         # c = o[t] meets `first`; o[t+1] meets `last`
            far = np.where(has_v, _pd(z, last, o[tv]), 0.0)
        else:                                             # c = o[t+1] meets `last`; o[t] meets `first`
            far = _pd(z, o[t], first)
        gain = r[ii] - (near + far - np.where(has_v, e[t], 0.0))
        if lab is not None:
            added = (np.where(has_n[ii], _switch(lab, o[si - 1], nx[ii]), 0) + _switch(lab, o[t], first)
                     + np.where(has_v, _switch(lab, last, o[tv]), 0))
            removed = (_switch(lab, o[si - 1], x[ii]) + np.where(has_n[ii], _switch(lab, y[ii], nx[ii]), 0)
                       + np.where(has_v, _switch(lab, o[t], o[tv]), 0))
            gain = np.where(added <= removed, gain, -1.0)
        lo = np.where(t > si, si - 1, t)
        hi = np.where(t > si, np.minimum(t + 1, n - 1), np.minimum(si + seg, n - 1))
        parts.append((gain, lo, hi, si, t, np.full(len(t), flip)))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(6)]
    return _Moves(cat[0].astype(np.float32), cat[1], cat[2], cat[3], cat[4], seg, cat[5].astype(bool))


def _select(moves: list[_Moves], n: int, cap: int) -> list[tuple[_Moves, int]]:
    """Best improving moves (at most ``cap`` looked at) whose touched positions are pairwise disjoint."""
    gain = np.concatenate([m.gain for m in moves])
    kind = np.concatenate([np.full(len(m.gain), i) for i, m in enumerate(moves)])
    row = np.concatenate([np.arange(len(m.gain)) for m in moves])
    good = np.flatnonzero(gain > EPS)
    good = good[np.argsort(-gain[good], kind="stable")][:cap]
    taken = np.zeros(n, dtype=bool)
    out = []
    for g in good.tolist():
        m, r = moves[kind[g]], row[g]
        lo, hi = int(m.lo[r]), int(m.hi[r]) + 1
        if taken[lo:hi].any():
            continue
        taken[lo:hi] = True
        out.append((m, int(r)))
    return out


def _apply(o: np.ndarray, m: _Moves, r: int) -> None:
    a, b = int(m.a[r]), int(m.b[r])
    if m.seg == 0:                                        # reverse o[a..b]
        o[a:b + 1] = o[a:b + 1][::-1].copy()
        return
    run = o[a:a + m.seg].copy()
    if m.flip[r]:
        run = run[::-1]
    if b > a:                                             # run moves forward to after o[b]
        o[a:b - m.seg + 1] = o[a + m.seg:b + 1].copy()
        o[b - m.seg + 1:b + 1] = run
    else:                                                 # run moves back to after o[b]
        o[b + 1 + m.seg:a + m.seg] = o[b + 1:a].copy()
        o[b + 1:b + 1 + m.seg] = run


def improve(z: np.ndarray, order: np.ndarray, nbr: np.ndarray, *, labels: np.ndarray | None = None,
            max_rounds: int = 200, time_limit: float | None = None, span: int = 50_000,
            segments: tuple[int, ...] = (1, 2, 3), cap: int = 200_000) -> np.ndarray:
    """A permutation with the same first block as ``order`` and a path cost no higher (see module docstring).

    z: (N, D) latents (squared L2 cost); order: (N,) permutation; nbr: (N, K) candidate lists (block ids, -1 pads);
    labels: (N,) optional, refuse moves that add a label switch; span: the farthest two positions a move may touch
    (bounds the cost of one reversal at 1M blocks); cap: improving candidates looked at per round.
    """
    zf = np.ascontiguousarray(z, dtype=np.float32)
    o = np.array(order, dtype=np.int64)
    n = len(o)
    if zf.ndim != 2 or zf.shape[0] != n or nbr.shape[0] != n:
        raise DataError(f"improve: z {zf.shape}, order ({n},) and nbr {nbr.shape} must agree on N")
    if n < 4:
        return o
    lab = None if labels is None else np.asarray(labels)
    nb = np.asarray(nbr, dtype=np.int64)
    safe = np.where(nb >= 0, nb, 0)
    nd = np.where(nb >= 0, _pd(zf, np.repeat(np.arange(n), nb.shape[1]), safe.ravel()).reshape(nb.shape), np.inf)
    nd = nd.astype(np.float32)
    pos = np.empty(n, dtype=np.int64)
    t0 = time.perf_counter()
    for _ in range(max_rounds):
        pos[o] = np.arange(n)
        e = np.zeros(n, dtype=np.float32)
        e[:-1] = _pd(zf, o[:-1], o[1:])
        moves = [_two_opt(zf, o, pos, nb, nd, e, lab, span)]
        moves += [_or_opt(zf, o, pos, nb, nd, e, lab, span, L) for L in segments if L < n - 1]
        chosen = _select(moves, n, cap)
        if not chosen:
            break
        for m, r in chosen:
            _apply(o, m, r)
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
    return o
