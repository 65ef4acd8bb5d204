"""Independent numpy reference for lowbit's GPTQ (docs/gptq.md), written from the
algorithm's description, not from the C++ code. Float32 weights and updates like
the solver; the inverse Hessian factor is computed in float64 by a different route
(numpy's inverse, then its Cholesky factor), so small float32 differences are
expected and the test allows a handful of codes to differ by one step.

    gptq(w, h, bits, group, scheme, search, act_order, static_groups)
        -> codes [rows, cols] (original column order), scales/zeros/mins [rows, groups], g_idx [cols]
"""
import numpy as np

import gsq_ref

F32 = np.float32


def effective_block(block, group, cols):
    if group >= cols:
        return min(block, cols)
    if group >= block:
        return group
    return (block + group - 1) // group * group


def inverse_upper_factor(h):
    """Upper U with U^T U = H^-1, in float64."""
    hinv = np.linalg.inv(h.astype(np.float64))
    return np.linalg.cholesky(hinv).T


def gptq(w, h, bits, group, scheme, search="rtn", act_order=False, static_groups=False,
         damp_percent=0.01, block_size=128, importance=None):
    """search "importance" fits group parameters weighted by `importance` (one weight
    per original column; lowbit passes diag(H) / 2)."""
    w = np.array(w, dtype=F32)
    h = np.array(h, dtype=F32)
    rows, cols = w.shape
    G = cols if group == 0 else group
    maxq = (1 << bits) - 1
    diag = np.diag(h).copy()
    dead = diag == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(cols)
    n_groups = cols // G
    scales = np.zeros((rows, n_groups), F32)
    zeros = np.zeros((rows, n_groups), np.int64)
    mins = np.zeros((rows, n_groups), F32)

    def fit(gidx, values, columns):  # values: [rows, n] current weights of the group's original `columns`
        weights = np.ones(values.shape)
        if search == "importance":
            imp = np.asarray(importance, dtype=np.float64)[columns]
            if (imp > 0).any():  # all-zero importance: fit the plain values
                weights = np.tile(imp, (values.shape[0], 1))
        p = gsq_ref.fit_groups(np.ascontiguousarray(values, dtype=F32), weights, bits, scheme, search)
        scales[:, gidx], zeros[:, gidx], mins[:, gidx] = p.scale, p.zero, p.min

    use_static = static_groups and G < cols
    if use_static:
        for g in range(n_groups):
            fit(g, w[:, g * G:(g + 1) * G], np.arange(g * G, (g + 1) * G))

    hp = h[np.ix_(perm, perm)].astype(np.float64)
    hp[np.diag_indices(cols)] += damp_percent * np.mean(np.diag(hp))
    hinv = inverse_upper_factor(hp).astype(F32)

    wp = w[:, perm].copy()
    codes_p = np.zeros((rows, cols), np.int64)
    group_of_pos = np.zeros(cols, np.int64)
    block = effective_block(block_size, G, cols)
    for i1 in range(0, cols, block):
        i2 = min(cols, i1 + block)
        err = np.zeros((rows, i2 - i1), F32)
        start = wp[:, i1:i2].copy()  # the block as it was before its own updates
        for p in range(i1, i2):
            if use_static:
                g = perm[p] // G
            else:
                g = p // G
                if p % G == 0:
                    if p > i1 and p + G <= i2:  # starts inside the block: fitted on the block's start
                        fit(g, start[:, p - i1:p - i1 + G], perm[p:p + G])
                    else:
                        fit(g, wp[:, p:p + G], perm[p:p + G])
            group_of_pos[p] = g
            params = gsq_ref.Params(scales[:, g], zeros[:, g], mins[:, g])
            col = wp[:, p:p + 1]
            q_codes = gsq_ref.encode(col, params, scheme, maxq)
            q = gsq_ref.decode(q_codes, params, scheme)[:, 0]
            codes_p[:, p] = q_codes[:, 0]
            e = (wp[:, p] - q) / hinv[p, p]
            err[:, p - i1] = e
            wp[:, p + 1:i2] -= np.outer(e, hinv[p, p + 1:i2]).astype(F32)
        wp[:, i2:] -= (err @ hinv[i1:i2, i2:]).astype(F32)

    codes = np.zeros_like(codes_p)
    codes[:, perm] = codes_p
    g_idx = np.zeros(cols, np.int64)
    g_idx[perm] = group_of_pos
    return codes, scales, (np.zeros_like(zeros) if scheme == "asym-fmin" else zeros), mins, g_idx
