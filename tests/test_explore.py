"""Every claim of factgpt.explore as an assertion with an explicit tolerance."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from factgpt.explore import claims as C
from factgpt.explore import run_exploration
from factgpt.explore import synth_task as S

DT = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -----------------------------------------------------------------------------
# helpers


def test_attend_is_the_definition():
    g = gen()
    K = torch.randn(5, 4, generator=g, dtype=DT)
    V = torch.randn(5, 3, generator=g, dtype=DT)
    q = torch.randn(4, generator=g, dtype=DT)
    c, alpha = C.attend(K, V, q)
    e = torch.exp(K @ q)
    assert torch.allclose(alpha, e / e.sum(), atol=1e-15)
    assert torch.allclose(c, sum(a * v for a, v in zip(e / e.sum(), V)), atol=1e-14)
    # batched keys give the same answer row by row
    cb, _ = C.attend(torch.stack([K, K]), V, q)
    assert torch.allclose(cb, torch.stack([c, c]), atol=1e-15)


def test_dist_to_hull_known_cases():
    square = torch.tensor([[0.0, 0], [1, 0], [0, 1], [1, 1]], dtype=DT)
    assert C.dist_to_hull(square, torch.tensor([0.5, 0.5], dtype=DT)) < 1e-12
    assert abs(C.dist_to_hull(square, torch.tensor([2.0, 0.5], dtype=DT)) - 1.0) < 1e-12
    assert abs(C.dist_to_hull(square, torch.tensor([2.0, 2.0], dtype=DT)) - math.sqrt(2)) < 1e-12


# -----------------------------------------------------------------------------
# (a), (b)


def test_copying():
    n = C.check_copying(gen())["numbers"]
    assert n["alpha_j_at_20"] > 1 - 1e-6
    assert n["err_at_20"] < 1e-6  # c is v_j, a vector; alpha_j is only its weight
    assert n["bound_respected"]
    assert n["max_dev_from_analytic"] < 1e-12


def test_averaging_and_extraction():
    n = C.check_averaging(gen())["numbers"]
    assert n["err_at_20"] < 1e-6
    assert n["err_at_5"] > 1e-3  # w = 5 is not yet "much larger than 0"
    assert n["extract_err"] < 1e-12  # M(v_a + v_b) = v_a exactly for orthogonal subspaces
    assert n["Mc_minus_half_va"] < 1e-6  # on the attention output M gives v_a / 2
    assert n["leak_at_10deg"] > 0.05  # and it needs the subspaces orthogonal


# -----------------------------------------------------------------------------
# (c)


def test_isotropic_noise_tiny_variance():
    r = C.check_isotropic_noise(gen(), samples=500)
    n = r["numbers"]
    assert abs(n["weight_mean"] - 0.5) < 0.01
    assert n["err_max"] < 0.05
    # "tiny" is relative to 1/w^2: with var = 1 the average is gone
    assert r["series"]["mean_err"]["10.0"][-1] > 0.3


def test_rank_one_bin_probabilities_sum_to_one():
    p = C.rank_one_bin_probs(torch.linspace(0, 1, 41, dtype=DT), w=10.0)
    assert abs(p.sum().item() - 1) < 1e-12 and (p >= 0).all()


def test_rank_one_noise_matches_formula():
    n = C.check_rank_one_noise(gen(), samples=10000)["numbers"]
    assert abs(n["eps_var"] - 0.5) < 0.05 and abs(n["eps_mean"] - 1) < 0.03
    assert n["max_formula_dev"] < 5e-3  # per sample, weight = 1/(1 + exp((1 - eps) w))
    assert n["max_bin_frac_dev"] < 0.01  # histogram against the exact distribution
    assert n["weight_std"] > 0.4  # c swings between v_a and v_b
    assert n["frac_below_0_1"] > 0.3 and n["frac_above_0_9"] > 0.3


# -----------------------------------------------------------------------------
# (d)


def test_identical_heads_give_identical_average():
    g = gen()
    mu, values = C._noisy_setup(g, 4, 8)
    keys, _ = C.sample_keys(mu, 1e-8, 1000, g, rank_one_a=True)
    q = 10 * (mu[0] + mu[1])
    one = C.heads_weight_on_a(keys, values, [q])
    eight = C.heads_weight_on_a(keys, values, [q] * 8)
    assert (one - eight).abs().max().item() < 1e-12


def test_heads_design_one_does_not_reduce_spread():
    n = C.check_heads(gen(), samples=4000)["numbers"]
    assert n["std_same_range"] < 1e-12  # the published claim fails: same std for 1, 2, 4, 8 heads
    assert max(n["std_alt"][1:]) - min(n["std_alt"][1:]) < 1e-12  # heads 3+ repeat heads 1, 2
    assert abs(n["median_alt"][1] - 0.5) < 0.01  # design (2) centres on 1/2
    assert n["std_alt"][1] < 0.5 * n["std_same"][1]
    assert abs(n["std_alt"][1] - n["alt_std_floor"]) < 0.02  # its spread is the eps < 0 samples
    # independent keys per head (not multi-head attention) would shrink like 1/sqrt(H)
    assert abs(n["std_indep"][-1] - n["std_indep"][0] / math.sqrt(8)) < 0.03


def test_checks_are_reproducible():
    a = C.check_heads(gen(3), samples=500)["numbers"]
    b = C.check_heads(gen(3), samples=500)["numbers"]
    assert a == b


# -----------------------------------------------------------------------------
# (e)


def test_plain_qkv():
    n = C.check_plain_qkv(gen())["numbers"]
    assert n["err_at_3"] < 1e-3
    assert n["err_at_1"] > 0.5  # at beta = 1, "c_2 ~ u_a" is far off
    # whatever the weights, c_2 stays at least 0.63 beta from u_b
    assert abs(n["variants"]["x2"]["hull_dist_to_ub"] - math.sqrt(0.4)) < 1e-9
    for name in ("x2+u_d", "x2+u_c", "x2+u_c+u_d"):
        assert abs(n["variants"][name]["hull_dist_to_ub"] - math.sqrt(0.5)) < 1e-9
        assert n["variants"][name]["dist_to_ub"] > 1


@pytest.mark.parametrize("beta", [0.7, 1.0, 1.5, 2.0])
def test_designed_qkv_scores_are_analytic(beta):
    U, X = C.qkv_vectors(beta, gen(1))
    ua, ub, uc, ud = U
    out = C.designed_qkv(U, X)
    b6 = beta**6
    expected = b6 * torch.tensor([[0, 0, 1], [2, 0, 0], [0, 0, 1]], dtype=DT)
    assert torch.allclose(out["scores"], expected, rtol=0, atol=1e-12 * max(b6, 1))
    for got, want in [
        (out["v"], [ub, 0 * ub, ub - uc]),
        (out["k"], [2 * beta**2 * ua, 0 * ua, beta**2 * (ua - uc)]),
        (out["q"], [-(beta**2) * uc, beta**2 * (ua + uc), -(beta**2) * uc]),
    ]:
        assert torch.allclose(got, torch.stack(want), atol=1e-12 * max(beta**4, 1))


def test_designed_qkv_outputs():
    n = C.check_designed_qkv(gen())["numbers"]
    assert n["max_score_dev"] < 1e-12
    assert n["err_c2_at_1_5"] < 1e-8 and n["err_c1_at_1_5"] < 1e-4
    assert n["err_c1_at_1"] > 0.1  # "approximately" needs beta^6 >> 1


# -----------------------------------------------------------------------------
# (g) the synthesizer's weights at t see only x_t


def _reshuffled_pair(cfg: S.TaskConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx, _, _ = S.sample_batch(cfg, 64, gen(seed))
    return idx, S.reshuffle_context(cfg, idx, gen(seed + 1))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n_head=st.sampled_from([1, 2, 4]), t=st.integers(0, 8))
def test_synthesizer_row_t_depends_only_on_x_t(seed, n_head, t):
    cfg = replace(S.QUICK, n_head=n_head)
    model = S.build(cfg, "synthesizer", seed)
    idx, _, _ = S.sample_batch(cfg, 32, gen(seed))
    other = S.sample_batch(cfg, 32, gen(seed + 1))[0]
    other[:, t] = idx[:, t]  # every position but t gets new contents
    with torch.no_grad():
        a, b = model(idx)[1][:, :, t], model(other)[1][:, :, t]
    assert (a - b).abs().max().item() <= 1e-6


def test_key_query_weights_do_depend_on_earlier_tokens():
    cfg = S.QUICK
    idx, changed = _reshuffled_pair(cfg, 0)
    for kind, moves in (("synthesizer", False), ("key-query", True)):
        model = S.build(cfg, kind, 0)
        d = (S.query_attention(model, idx) - S.query_attention(model, changed)).abs().max().item()
        assert (d > 0.1) if moves else (d <= 1e-6), (kind, d)


def test_training_is_reproducible():
    cfg = replace(S.QUICK, steps=5)
    (m1, h1), (m2, h2) = S.train(cfg, "key-query", 7), S.train(cfg, "key-query", 7)
    assert h1 == h2
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


# -----------------------------------------------------------------------------
# the whole command, once, in quick mode


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore")
    return out, run_exploration(out, seed=0, quick=True)


def test_run_writes_report_figures_json(quick_run):
    out, rows = quick_run
    assert [r["id"] for r in rows] == ["a", "b", "c1", "c2", "d", "e1", "e2", "g"]
    report = (out / "report.md").read_text(encoding="utf-8")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 8
    for name in pngs:
        assert f"]({name})" in report  # embedded by relative path
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["seed"] == 0 and data["quick"] is True
    assert [c["id"] for c in data["claims"]] == [r["id"] for r in rows]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_run_learning_experiment(quick_run):
    _, rows = quick_run
    n = rows[-1]["numbers"]
    assert n["accuracy_key_query"] > 0.9
    assert abs(n["accuracy_synthesizer"] - n["chance_among_present"]) < 0.05  # a guess among present values
    assert n["accuracy_synthesizer"] < 0.5 * n["accuracy_key_query"]
    assert n["invariance_synthesizer"]["max_abs_change"] <= 1e-6
    assert n["invariance_key_query"]["max_abs_change"] > 0.5
