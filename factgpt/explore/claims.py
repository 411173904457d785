"""Claims about softmax attention, each as code: build the vectors, compute, measure.

Attention here is c = sum_i alpha_i v_i with alpha = softmax over i of k_i^T q.
Everything is float64, so that "approximately" is the softmax talking, not rounding.
Every check returns a dict: the table row (title, construction, measured, holds),
the headline numbers, and the series the report plots.
"""

from __future__ import annotations

import itertools
import math

import torch

DT = torch.float64


# -----------------------------------------------------------------------------
# small helpers


def attend(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One head. keys (..., n, d), values (n, dv) or (..., n, dv), query (d,) -> (c, alpha)."""
    scores = (keys @ query.unsqueeze(-1)).squeeze(-1)  # (..., n)
    alpha = torch.softmax(scores, dim=-1)
    return alpha.unsqueeze(-2).matmul(values).squeeze(-2), alpha


def orthonormal(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """n random orthonormal row vectors in R^d (n <= d)."""
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=gen, dtype=DT))
    return q.T.contiguous()


def normal_cdf(x: torch.Tensor | float) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(torch.as_tensor(x, dtype=DT) / math.sqrt(2)))


def logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def dist_to_hull(points: torch.Tensor, target: torch.Tensor) -> float:
    """Exact distance from `target` to the convex hull of a few `points` (rows).

    The nearest hull point is the projection onto the affine span of some face;
    try every subset and keep projections whose barycentric weights are >= 0.
    """
    best = math.inf
    n = points.shape[0]
    for r in range(1, n + 1):
        for face in itertools.combinations(range(n), r):
            p0 = points[face[0]]
            if r == 1:
                lam = torch.ones(1, dtype=DT)
            else:
                E = (points[list(face[1:])] - p0).T  # (d, r-1)
                t = torch.linalg.lstsq(E, (target - p0).unsqueeze(-1)).solution.squeeze(-1)
                lam = torch.cat([(1 - t.sum()).unsqueeze(0), t])
            if (lam >= -1e-12).all():
                proj = lam @ points[list(face)]
                best = min(best, (proj - target).norm().item())
    return best


def _series(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t]


# -----------------------------------------------------------------------------
# (a) copying


def check_copying(gen: torch.Generator, n: int = 6, d: int = 16, dv: int = 8, j: int = 2) -> dict:
    """k_j^T q exceeds every other score by a margin m: alpha_j -> 1 and c -> v_j."""
    keys = torch.randn(n, d, generator=gen, dtype=DT)  # general position, not orthogonal
    values = torch.randn(n, dv, generator=gen, dtype=DT)
    pinv = torch.linalg.pinv(keys)  # q = pinv(K) s gives scores exactly s (K has full row rank)
    margins = torch.linspace(0, 20, 41, dtype=DT)
    alpha_j, err, bound = [], [], []
    spread = (values - values[j]).norm(dim=-1).max()
    for m in margins:
        s = torch.zeros(n, dtype=DT)
        s[j] = m
        c, alpha = attend(keys, values, pinv @ s)
        alpha_j.append(alpha[j].item())
        err.append((c - values[j]).norm().item())
        # c - v_j = sum_{i != j} alpha_i (v_i - v_j), so the error is at most (1 - alpha_j) max ||v_i - v_j||
        bound.append((1 - alpha[j]).item() * spread.item())
    alpha_j_t = torch.tensor(alpha_j, dtype=DT)
    analytic = torch.exp(margins) / (torch.exp(margins) + n - 1)
    a20, e20 = alpha_j[-1], err[-1]
    m99 = math.log(99 * (n - 1))  # margin at which alpha_j = 0.99
    return dict(
        id="a",
        title="(a) copying: k_jᵀq ≫ k_iᵀq gives c ≈ v_j",
        construction=f"{n} random keys in R^{d} (not orthogonal), q = K⁺(m e_j), so k_jᵀq − k_iᵀq = m",
        measured=f"m=20: 1−α_j = {1 - a20:.1e}, ‖c−v_j‖ = {e20:.1e}; α_j ≥ 0.99 needs m ≥ {m99:.1f}",
        holds="yes (c ≈ v_j, not α_j)",
        numbers=dict(
            n_keys=n,
            alpha_j_at_20=a20,
            one_minus_alpha_j_at_20=1 - a20,
            err_at_20=e20,
            margin_for_0_99=m99,
            max_dev_from_analytic=(alpha_j_t - analytic).abs().max().item(),
            bound_respected=bool(all(e <= b + 1e-12 for e, b in zip(err, bound))),
        ),
        series=dict(margin=_series(margins), alpha_j=alpha_j, err=err, bound=bound),
    )


# -----------------------------------------------------------------------------
# (b) averaging two values, and reading one back out


def check_averaging(gen: torch.Generator, n: int = 6, d: int = 8, dv: int = 8, r: int = 3) -> dict:
    """Orthonormal keys, q = w(k_a + k_b): c -> (v_a + v_b)/2; M = A A^T recovers v_a."""
    a, b = 0, 1
    keys = orthonormal(n, d, gen)
    # v_a lives in span(A), v_b in span(B), A and B orthogonal r-dim subspaces of R^dv
    basis = orthonormal(dv, dv, gen)
    A, B = basis[:r], basis[r : 2 * r]
    values = torch.randn(n, dv, generator=gen, dtype=DT)
    values[a] = torch.randn(r, generator=gen, dtype=DT) @ A
    values[b] = torch.randn(r, generator=gen, dtype=DT) @ B
    target = 0.5 * (values[a] + values[b])
    ws = torch.linspace(0, 20, 41, dtype=DT)
    err, alpha_a = [], []
    for w in ws:
        c, alpha = attend(keys, values, w * (keys[a] + keys[b]))
        err.append((c - target).norm().item())
        alpha_a.append(alpha[a].item())
    c20 = c

    M = A.T @ A  # sum_i a_i a_i^T, the orthogonal projector onto span(A)
    extract_err = (M @ (values[a] + values[b]) - values[a]).norm().item()
    half_err = (M @ c20 - 0.5 * values[a]).norm().item()
    # when the subspaces are not orthogonal M lets part of v_b through
    thetas = torch.linspace(0, 90, 19, dtype=DT)
    leak = []
    for th in thetas:
        t = math.radians(th.item())
        B_tilt = B.clone()
        B_tilt[0] = math.cos(t) * B[0] + math.sin(t) * A[0]
        vb = torch.ones(r, dtype=DT) @ B_tilt
        leak.append(((M @ (values[a] + vb) - values[a]).norm() / vb.norm()).item())
    return dict(
        id="b",
        title="(b) averaging: orthonormal keys, q = w(k_a+k_b) gives c ≈ ½(v_a+v_b); M extracts v_a",
        construction=f"{n} orthonormal keys in R^{d}; v_a, v_b in orthogonal {r}-dim subspaces; M = Σ a_i a_iᵀ",
        measured=(
            f"‖c−½(v_a+v_b)‖: w=5 {err[10]:.1e}, w=20 {err[-1]:.1e}; "
            f"‖M(v_a+v_b)−v_a‖ = {extract_err:.0e}; Mc ≈ ½v_a"
        ),
        holds="yes (Mc gives ½v_a: use 2M on c)",
        numbers=dict(
            err_at_5=err[10],
            err_at_20=err[-1],
            extract_err=extract_err,
            Mc_minus_half_va=half_err,
            leak_at_10deg=leak[2],
        ),
        series=dict(w=_series(ws), err=err, alpha_a=alpha_a, theta=_series(thetas), leak=leak),
    )


# -----------------------------------------------------------------------------
# (c) noisy keys, one head


def _noisy_setup(gen: torch.Generator, n: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal key means mu_i and orthonormal values, so v_a^T c is the weight on v_a."""
    return orthonormal(n, d, gen), orthonormal(n, d, gen)


def sample_keys(
    mu: torch.Tensor, var: float, samples: int, gen: torch.Generator, rank_one_a: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """k_i ~ N(mu_i, var I); with rank_one_a, k_a ~ N(mu_a, var I + 1/2 mu_a mu_a^T) (a = 0).

    Returns the keys (samples, n, d) and eps = mu_a^T k_a, the scale of k_a along mu_a.
    """
    n, d = mu.shape
    keys = mu + math.sqrt(var) * torch.randn(samples, n, d, generator=gen, dtype=DT)
    if rank_one_a:
        g = torch.randn(samples, 1, generator=gen, dtype=DT)
        keys[:, 0] += math.sqrt(0.5) * g * mu[0]  # covariance gains 1/2 mu_a mu_a^T
    return keys, keys[:, 0] @ mu[0]


def check_isotropic_noise(gen: torch.Generator, samples: int = 2000, n: int = 4, d: int = 8) -> dict:
    """Sigma_i = var I with tiny var: q = w(mu_a + mu_b) still averages v_a and v_b."""
    mu, values = _noisy_setup(gen, n, d)
    target = 0.5 * (values[0] + values[1])
    variances = torch.logspace(-10, 0, 21, dtype=DT)
    ws = (5.0, 10.0, 20.0)
    mean_err: dict[str, list[float]] = {}
    for w in ws:
        q = w * (mu[0] + mu[1])
        row = []
        for var in variances:
            keys, _ = sample_keys(mu, var.item(), samples, gen, rank_one_a=False)
            c, _ = attend(keys, values, q)
            row.append((c - target).norm(dim=-1).mean().item())
        mean_err[str(w)] = row
    # headline: var = 1e-6, w = 10
    keys, _ = sample_keys(mu, 1e-6, samples, gen, rank_one_a=False)
    c, _ = attend(keys, values, 10.0 * (mu[0] + mu[1]))
    e = (c - target).norm(dim=-1)
    wa = c @ values[0]
    return dict(
        id="c1",
        title="(c)i key noise Σ_i = var·I, tiny var: c ≈ ½(v_a+v_b)",
        construction=f"{n} orthonormal means μ_i in R^{d}, k_i ~ N(μ_i, var·I), q = w(μ_a+μ_b), {samples} samples",
        measured=(
            f"var=1e-6, w=10: weight on v_a {wa.mean().item():.3f} ± {wa.std().item():.4f}, "
            f"max ‖c−½(v_a+v_b)‖ = {e.max().item():.3f}; breaks once w√var ≈ 0.1"
        ),
        holds="yes, if w²·var ≪ 1",
        numbers=dict(
            weight_mean=wa.mean().item(),
            weight_std=wa.std().item(),
            err_mean=e.mean().item(),
            err_max=e.max().item(),
        ),
        series=dict(var=_series(variances), mean_err=mean_err),
    )


def rank_one_bin_probs(edges: torch.Tensor, w: float, eps_var: float = 0.5) -> torch.Tensor:
    """P(p in each bin) for p = sigmoid(w(eps - 1)), eps ~ N(1, eps_var): exact."""
    inner = edges[1:-1]
    z = logit(inner) / (w * math.sqrt(eps_var))  # p < e  <=>  (eps - 1)/sd < logit(e)/(w sd)
    cdf = torch.cat([torch.zeros(1, dtype=DT), normal_cdf(z), torch.ones(1, dtype=DT)])
    return cdf[1:] - cdf[:-1]


def check_rank_one_noise(
    gen: torch.Generator, samples: int = 20000, w: float = 10.0, n: int = 4, d: int = 8, var: float = 1e-8
) -> dict:
    """Sigma_a = var I + 1/2 mu_a mu_a^T: k_a ~ eps mu_a and c swings between v_a and v_b."""
    mu, values = _noisy_setup(gen, n, d)
    keys, eps = sample_keys(mu, var, samples, gen, rank_one_a=True)
    c, _ = attend(keys, values, w * (mu[0] + mu[1]))
    wa = c @ values[0]  # weight on v_a
    predicted = torch.sigmoid(w * (eps - 1))  # 1 / (1 + exp((1 - eps) w))
    edges = torch.linspace(0, 1, 41, dtype=DT)
    counts = torch.histc(wa.clamp(0, 1 - 1e-15), bins=40, min=0, max=1)
    measured_frac = counts / samples
    expected_frac = rank_one_bin_probs(edges, w)
    mid = ((wa > 0.1) & (wa < 0.9)).double().mean().item()
    return dict(
        id="c2",
        title="(c)ii k_a ≈ ε μ_a, ε ~ N(1, ½): c swings between v_a and v_b",
        construction=f"Σ_a = var·I + ½μ_aμ_aᵀ (var={var:g}), q = {w:g}(μ_a+μ_b), {samples} samples",
        measured=(
            f"weight on v_a: std {wa.std().item():.3f}, {1 - mid:.0%} of samples < 0.1 or > 0.9; "
            f"max dev. from 1/(1+exp((1−ε)w)) = {(wa - predicted).abs().max().item():.1e}"
        ),
        holds="yes",
        numbers=dict(
            w=w,
            samples=samples,
            weight_mean=wa.mean().item(),
            weight_std=wa.std().item(),
            frac_below_0_1=(wa < 0.1).double().mean().item(),
            frac_above_0_9=(wa > 0.9).double().mean().item(),
            max_formula_dev=(wa - predicted).abs().max().item(),
            max_bin_frac_dev=(measured_frac - expected_frac).abs().max().item(),
            eps_mean=eps.mean().item(),
            eps_var=eps.var().item(),
        ),
        series=dict(
            # a subsample for the scatter plot; the histogram below uses every sample
            eps_sample=_series(eps[:2000]),
            weight_sample=_series(wa[:2000]),
            edges=_series(edges),
            measured_frac=_series(measured_frac),
            expected_frac=_series(expected_frac),
        ),
    )


# -----------------------------------------------------------------------------
# (d) several heads under the rank-one noise of (c)ii


def heads_weight_on_a(keys: torch.Tensor, values: torch.Tensor, queries: list[torch.Tensor]) -> torch.Tensor:
    """Every head sees the same keys; the output is the mean of the heads' outputs."""
    c = torch.stack([attend(keys, values, q)[0] for q in queries]).mean(dim=0)
    return c @ values[0]


def check_heads(
    gen: torch.Generator,
    samples: int = 20000,
    w: float = 10.0,
    n: int = 4,
    d: int = 8,
    var: float = 1e-8,
    head_counts: tuple[int, ...] = (1, 2, 4, 8),
) -> dict:
    """Does adding heads with q = w(mu_a + mu_b) shrink the spread? Compare with q alternating mu_a, mu_b."""
    mu, values = _noisy_setup(gen, n, d)
    keys, _ = sample_keys(mu, var, samples, gen, rank_one_a=True)
    q_same = w * (mu[0] + mu[1])
    q_alt = [w * mu[0], w * mu[1]]
    std_same, std_alt, std_indep = [], [], []
    median_alt, near_half_alt, mean_alt = [], [], []
    hist: dict[str, list[float]] = {}
    for h in head_counts:
        wa1 = heads_weight_on_a(keys, values, [q_same] * h)
        wa2 = heads_weight_on_a(keys, values, [q_alt[i % 2] for i in range(h)])
        if h == 2:
            for name, wa in (("same", wa1), ("alt", wa2)):
                hist[name] = _series(torch.histc(wa.clamp(0, 1 - 1e-15), bins=40, min=0, max=1) / samples)
        std_same.append(wa1.std().item())
        std_alt.append(wa2.std().item())
        mean_alt.append(wa2.mean().item())
        median_alt.append(wa2.median().item())
        near_half_alt.append(((wa2 - 0.5).abs() < 0.05).double().mean().item())
        # what the published answer implicitly assumes: every head draws its own keys
        own_keys = [sample_keys(mu, var, samples, gen, rank_one_a=True)[0] for _ in range(h)]
        per_head = [attend(k, values, q_same)[0] @ values[0] for k in own_keys]
        std_indep.append(torch.stack(per_head).mean(0).std().item())
    # spread against w with two heads: design (2) has a floor from samples with eps < 0
    ws = torch.linspace(1, 30, 30, dtype=DT)
    w_same, w_alt = [], []
    for wv in ws:
        w_same.append(heads_weight_on_a(keys, values, [wv * (mu[0] + mu[1])] * 2).std().item())
        w_alt.append(heads_weight_on_a(keys, values, [wv * mu[0], wv * mu[1]]).std().item())
    p_neg = normal_cdf(-1 / math.sqrt(0.5)).item()  # P(eps < 0): k_a points away from mu_a
    floor = 0.5 * math.sqrt(p_neg * (1 - p_neg))
    i2 = head_counts.index(2) if 2 in head_counts else 0
    return dict(
        id="d",
        title="(d) more heads with the same q = w(μ_a+μ_b) reduce the spread (published)",
        construction=(
            f"noise of (c)ii, w={w:g}, {samples} samples; {list(head_counts)} heads share the keys; "
            "output = mean of heads"
        ),
        measured=(
            "std of weight on v_a, design (1): " + ", ".join(f"{s:.4f}" for s in std_same)
            + f" (range {max(std_same) - min(std_same):.0e}); design (2), 2+ heads: {std_alt[i2]:.3f}, "
            + f"median {median_alt[i2]:.3f}"
        ),
        holds="no: the heads are identical, averaging changes nothing",
        numbers=dict(
            w=w,
            samples=samples,
            head_counts=list(head_counts),
            std_same=std_same,
            std_same_range=max(std_same) - min(std_same),
            std_alt=std_alt,
            mean_alt=mean_alt,
            median_alt=median_alt,
            near_half_alt=near_half_alt,
            std_indep=std_indep,
            p_eps_negative=p_neg,
            alt_std_floor=floor,
        ),
        series=dict(w=_series(ws), w_std_same=w_same, w_std_alt=w_alt, hist_two_heads=hist),
    )


# -----------------------------------------------------------------------------
# (e) designed Q, K, V on three tokens


def qkv_vectors(beta: float, gen: torch.Generator | None = None, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """u_a, u_b, u_c, u_d orthogonal with norm beta (rows), and x_1..x_3 (rows)."""
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    U = beta * orthonormal(4, d, gen)
    ua, ub, uc, ud = U
    X = torch.stack([ud + ub, ua, uc + ub])
    return U, X


def designed_qkv(U: torch.Tensor, X: torch.Tensor) -> dict[str, torch.Tensor]:
    """The hand-built projections; rows of q, k, v are q_i = Q x_i etc."""
    ua, ub, uc, ud = U
    beta2 = ub @ ub
    outer = torch.outer
    V = (outer(ub, ub) - outer(uc, uc)) / beta2
    K = outer(ua, ub) + outer(ua, ud) - outer(uc, uc)
    Q = outer(ua, ua) - outer(uc, ub) + outer(uc, ua)
    q, k, v = X @ Q.T, X @ K.T, X @ V.T
    scores = q @ k.T  # scores[i, j] = k_j^T q_i
    alpha = torch.softmax(scores, dim=-1)
    return dict(q=q, k=k, v=v, scores=scores, alpha=alpha, c=alpha @ v)


def check_plain_qkv(gen: torch.Generator, beta: float = 3.0) -> dict:
    """q = k = v = x: c_2 ~ u_a, and no added u_c, u_d makes c_2 ~ u_b."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    betas = torch.linspace(0.25, 4, 31, dtype=DT)
    err = []
    for bt in betas:
        U, X = qkv_vectors(bt.item(), torch.Generator().manual_seed(seed))
        c = torch.softmax(X @ X.T, dim=-1) @ X
        err.append(((c[1] - U[0]).norm() / bt).item())
    U, X = qkv_vectors(beta, torch.Generator().manual_seed(seed))
    ua, ub, uc, ud = U
    variants = {"x2": X[1], "x2+u_d": X[1] + ud, "x2+u_c": X[1] + uc, "x2+u_c+u_d": X[1] + uc + ud}
    rows = {}
    for name, x2 in variants.items():
        Xv = torch.stack([X[0], x2, X[2]])
        c2 = (torch.softmax(Xv @ x2, dim=-1) @ Xv)  # the token changed, so its q, k and v change
        rows[name] = dict(
            dist_to_ub=((c2 - ub).norm() / beta).item(),
            dist_to_x2=((c2 - x2).norm() / x2.norm()).item(),
            # whatever the scores, c_2 is a convex combination of the values
            hull_dist_to_ub=dist_to_hull(Xv, ub) / beta,
        )
    min_hull = min(r["hull_dist_to_ub"] for r in rows.values())
    return dict(
        id="e1",
        title="(e)i q = k = v = x: c₂ ≈ u_a; adding u_d or u_c to x₂ cannot give u_b",
        construction="u_a..u_d orthogonal, norm β, in R^6; x₁ = u_d+u_b, x₂ = u_a, x₃ = u_c+u_b; no projections",
        measured=(
            f"‖c₂−u_a‖/β: β=1 {err[6]:.2f}, β=3 {err[22]:.1e}; "
            f"over all possible weights ‖c₂−u_b‖/β ≥ {min_hull:.3f}"
        ),
        holds="yes (needs β² ≫ 1)",
        numbers=dict(err_at_1=err[6], err_at_3=err[22], variants=rows, min_hull_dist=min_hull),
        series=dict(beta=_series(betas), err=err),
    )


def check_designed_qkv(gen: torch.Generator) -> dict:
    """With the designed Q, K, V: c_2 ~ u_b and c_1 ~ u_b - u_c; scores as analysed."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    betas = torch.linspace(0.5, 2.0, 31, dtype=DT)
    err2, err1, err3 = [], [], []
    for bt in betas:
        U, X = qkv_vectors(bt.item(), torch.Generator().manual_seed(seed))
        out = designed_qkv(U, X)
        ub, uc = U[1], U[2]
        err1.append(((out["c"][0] - (ub - uc)).norm() / bt).item())
        err2.append(((out["c"][1] - ub).norm() / bt).item())
        err3.append(((out["c"][2] - (ub - uc)).norm() / bt).item())
    beta = 1.5
    U, X = qkv_vectors(beta, torch.Generator().manual_seed(seed))
    out = designed_qkv(U, X)
    b6 = beta**6
    expected = torch.tensor([[0, 0, 1], [2, 0, 0], [0, 0, 1]], dtype=DT)
    ratio = out["scores"] / b6
    ok = [b for b, e1, e2 in zip(betas.tolist(), err1, err2) if max(e1, e2) < 1e-3]
    return dict(
        id="e2",
        title="(e)ii designed Q, K, V: c₂ ≈ u_b, c₁ ≈ u_b − u_c",
        construction=(
            "V = (u_bu_bᵀ − u_cu_cᵀ)/β², K = u_au_bᵀ + u_au_dᵀ − u_cu_cᵀ, Q = u_au_aᵀ − u_cu_bᵀ + u_cu_aᵀ"
        ),
        measured=(
            "scores k_jᵀq_i/β⁶ = [[0,0,1],[2,0,0],[0,0,1]] (row i = query i); "
            f"β=1.5: ‖c₂−u_b‖/β = {err2[20]:.0e}, ‖c₁−(u_b−u_c)‖/β = {err1[20]:.0e}"
        ),
        holds="yes (read: exp(k₁ᵀq₂) ≫ exp(k₃ᵀq₂), 2β⁶ vs 0)",
        numbers=dict(
            beta=beta,
            scores_over_beta6=ratio.tolist(),
            max_score_dev=(ratio - expected).abs().max().item(),
            err_c2_at_1=err2[10],
            err_c1_at_1=err1[10],
            err_c2_at_1_5=err2[20],
            err_c1_at_1_5=err1[20],
            beta_for_1e_3=ok[0] if ok else None,  # both errors below 1e-3 from here on
            # coordinates along u_a, u_b, u_c, u_d: v_i in units of u, k_i and q_i in units of beta^2 u
            v_coords=(out["v"] @ U.T / beta**2).tolist(),
            k_coords=(out["k"] @ U.T / beta**4).tolist(),
            q_coords=(out["q"] @ U.T / beta**4).tolist(),
        ),
        series=dict(beta=_series(betas), err_c1=err1, err_c2=err2, err_c3=err3),
    )
