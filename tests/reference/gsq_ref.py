"""Independent numpy reference for GSQ's rtn (absmax / min-max), mse and importance
searches, written from the definitions in docs/gsq.md, not from the C++ code.

Arithmetic mirrors the documented precision: values, scales and codes in float32,
round half to even, scales rounded to fp16 through numpy's float16 (IEEE RNE),
least-squares sums in float64 accumulated left to right, the search's error
sums in float64 in four interleaved lanes (see lane_sum).

    quantize(w, bits, group, scheme, search, imp=None) -> codes, scales, zeros, mins
    scheme: "sym" | "asym" | "asym-fmin";  search: "rtn" | "mse" | "importance"
"""
import numpy as np

F32 = np.float32
GRID, MAX_SHRINK = 100, 0.8
REFITS = 4


def fp16(v):
    return np.asarray(v, dtype=F32).astype(np.float16).astype(F32)


def round_even(v):
    return np.round(np.clip(np.asarray(v, dtype=F32), F32(-4096), F32(4096))).astype(F32)


def seqsum(a):
    """Left-to-right float64 sum along the last axis (np.sum would sum pairwise)."""
    return np.cumsum(a, axis=-1, dtype=np.float64)[..., -1]


class Params:
    """Per-group parameters of a batch of groups (1-D arrays)."""

    def __init__(self, scale, zero, mn):
        self.scale, self.zero, self.min = scale.astype(F32), zero.astype(np.int64), mn.astype(F32)

    def where(self, mask, other):
        return Params(np.where(mask, self.scale, other.scale), np.where(mask, self.zero, other.zero),
                      np.where(mask, self.min, other.min))


def encode(x, p, scheme, maxq):
    s = p.scale[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if scheme == "asym-fmin":
            t = round_even((x - p.min[:, None]) / s)
        else:
            t = round_even(x / s) + p.zero[:, None].astype(F32)
    t = np.clip(t, F32(0), F32(maxq))
    zero_code = np.zeros_like(t) if scheme == "asym-fmin" else np.broadcast_to(p.zero[:, None].astype(F32), t.shape)
    t = np.where(s == 0, zero_code, t)
    return t.astype(np.int64)


def decode(q, p, scheme):
    if scheme == "asym-fmin":
        return p.scale[:, None] * q.astype(F32) + p.min[:, None]
    return p.scale[:, None] * (q - p.zero[:, None]).astype(F32)


def lane_sum(a):
    """The search's error sum: element i goes to lane i % 4, each lane summed left to
    right, lanes combined as (l0 + l1) + (l2 + l3)."""
    pad = (-a.shape[-1]) % 4
    a = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, pad)])
    lanes = np.cumsum(a.reshape(*a.shape[:-1], -1, 4), axis=-2, dtype=np.float64)[..., -1, :]
    return (lanes[..., 0] + lanes[..., 1]) + (lanes[..., 2] + lanes[..., 3])


def error(x, w, p, scheme, maxq):
    d = decode(encode(x, p, scheme, maxq), p, scheme).astype(np.float64) - x.astype(np.float64)
    return lane_sum(w * (d * d))


def params_for_range(lo, hi, smax, scheme, bits, alt):
    n = lo.shape[0]
    maxq = (1 << bits) - 1
    zero = np.zeros(n, np.int64)
    mn = np.zeros(n, F32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if scheme == "sym":
            half = 1 << (bits - 1)
            scale = fp16(smax / F32(half - 1)) if alt else fp16(smax / -F32(half))
            zero[:] = half
        elif scheme == "asym":
            lo, hi = np.minimum(lo, F32(0)), np.maximum(hi, F32(0))
            scale = np.where(hi == lo, F32(0), fp16((hi - lo) / F32(maxq)))
            z = np.clip(round_even(-lo / scale), F32(0), F32(maxq))
            zero = np.where(scale == 0, 0, z).astype(np.int64)
        else:
            mn = fp16(lo)
            scale = np.where(hi > lo, fp16((hi - lo) / F32(maxq)), F32(0))
    scale = np.where(np.isfinite(scale), scale, F32(0))
    return Params(scale, zero, mn)


def refit(x, w, p, scheme, maxq):
    """Least-squares parameters with the codes of p held fixed, and whether they are usable."""
    q = encode(x, p, scheme, maxq).astype(np.float64)
    xd = x.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if scheme == "sym":
            qz = q - p.zero[:, None]
            num, den = seqsum(w * qz * xd), seqsum(w * qz * qz)
            ok = den > 0
            scale = fp16((num / den).astype(F32))
            new = Params(scale, p.zero, p.min)
        else:
            sw, sq, sx = seqsum(w * np.ones_like(q)), seqsum(w * q), seqsum(w * xd)
            sqq, sqx = seqsum(w * q * q), seqsum(w * q * xd)
            det = sw * sqq - sq * sq
            ok = det > 0
            scale = fp16(((sw * sqx - sq * sx) / det).astype(F32))
            offset = (sqq * sx - sq * sqx) / det
            if scheme == "asym-fmin":
                new = Params(scale, p.zero, fp16(offset.astype(F32)))
            else:
                ok &= scale > 0
                zero = np.clip(np.round(-offset / scale.astype(np.float64)), 0, maxq)
                new = Params(scale, np.where(ok, zero, 0), p.min)
    ok &= np.isfinite(new.scale) & np.isfinite(new.min)
    return new, ok


def fit_groups(x, w, bits, scheme, search):
    """x: [n_groups, g] float32; w: [n_groups, g] float64 weights (ones when unweighted)."""
    maxq = (1 << bits) - 1
    lo, hi = x.min(axis=1), x.max(axis=1)
    smax = x[np.arange(x.shape[0]), np.argmax(np.abs(x), axis=1)]
    best = params_for_range(lo, hi, smax, scheme, bits, False)
    if search == "rtn":
        return best
    best_err = error(x, w, best, scheme, maxq)
    for i in range(int(MAX_SHRINK * GRID)):
        shrink = F32(1) - F32(i) / F32(GRID)
        for alt in ((False, True) if scheme == "sym" else (False,)):
            p = params_for_range(lo * shrink, hi * shrink, smax * shrink, scheme, bits, alt)
            err = error(x, w, p, scheme, maxq)
            better = err < best_err
            best, best_err = p.where(better, best), np.where(better, err, best_err)
    active = np.ones(x.shape[0], bool)
    for _ in range(REFITS):
        p, ok = refit(x, w, best, scheme, maxq)
        p = p.where(ok, best)
        err = error(x, w, p, scheme, maxq)
        better = active & (err < best_err)
        best, best_err = p.where(better, best), np.where(better, err, best_err)
        active &= better
    return best


def quantize(w, bits, group, scheme, search, imp=None):
    rows, cols = w.shape
    g = cols if group == 0 else group
    x = w.astype(F32).reshape(rows * (cols // g), g)
    if search == "importance":
        weights = np.tile(imp.astype(np.float64).reshape(cols // g, g), (rows, 1))
        dead = ~(weights > 0).any(axis=1)  # all-zero importance: fit the plain values
        weights[dead] = 1.0
    else:
        weights = np.ones_like(x, dtype=np.float64)
    p = fit_groups(x, weights, bits, scheme, search)
    codes = encode(x, p, scheme, (1 << bits) - 1).reshape(rows, cols)
    shape = (rows, cols // g)
    zeros = np.zeros(shape, np.int64) if scheme == "asym-fmin" else p.zero.reshape(shape)
    return codes, p.scale.reshape(shape), zeros, p.min.reshape(shape)
