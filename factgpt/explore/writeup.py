"""Turning the measured rows into a table, figures, report.md and results.json."""

from __future__ import annotations

import io
import json
import string
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg canvas for PNG

from ..fileio import atomic_write, write_text_atomic

# -----------------------------------------------------------------------------
# table


# The report's prose, with ${name} where a measured number goes (string.Template).
TEMPLATE = Path(__file__).with_name("writeup_template.md")


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|")


def table(rows: list[dict]) -> str:
    """Markdown table: readable on a terminal and in report.md."""
    lines = ["| claim | construction | measured | holds? |", "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r[k]) for k in ("title", "construction", "measured", "holds")) + " |")
    return "\n".join(lines)


# -----------------------------------------------------------------------------
# figures


def save_figure(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def _floor(x: list[float], lo: float = 1e-17) -> np.ndarray:
    """Log axes cannot show exact zeros; anything below float64 resolution sits on the floor."""
    return np.maximum(np.asarray(x, dtype=float), lo)


def fig_copying(r: dict) -> Figure:
    s, n = r["series"], r["numbers"]["n_keys"]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    m = np.asarray(s["margin"])
    ax1.semilogy(m, _floor(1 - np.asarray(s["alpha_j"])), "o", ms=3, label=r"measured $1-\alpha_j$")
    ax1.semilogy(m, (n - 1) / (np.exp(m) + n - 1), "-", lw=1, label=r"$(n-1)/(e^m+n-1)$")
    ax1.set(xlabel=r"margin $m = k_j^Tq - k_i^Tq$", ylabel=r"$1-\alpha_j$", title=r"weight on $v_j \to 1$")
    ax1.legend()
    ax2.semilogy(m, _floor(s["err"]), "o", ms=3, label=r"$\|c - v_j\|$")
    ax2.semilogy(m, _floor(s["bound"]), "-", lw=1, label=r"$(1-\alpha_j)\,\max_i\|v_i - v_j\|$")
    ax2.set(xlabel="margin m", ylabel="distance", title=r"output $c \to v_j$ (a vector, not $\alpha_j$)")
    ax2.legend()
    fig.suptitle(f"(a) copying: {n} random keys, scores m for key j and 0 for the rest")
    return fig


def fig_averaging(r: dict) -> Figure:
    s = r["series"]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(s["w"], _floor(s["err"]), "o-", ms=3)
    ax1.set(xlabel=r"$w$ in $q = w(k_a + k_b)$", ylabel=r"$\|c - \frac{1}{2}(v_a + v_b)\|$", title="averaging two values")
    ax2.plot(s["theta"], s["leak"], "o-", ms=3)
    ax2.set(
        xlabel="tilt of v_b's subspace towards v_a's [degrees] (0 = orthogonal)",
        ylabel=r"$\|M(v_a + v_b) - v_a\| \;/\; \|v_b\|$",
        title=r"$M = \sum_i a_i a_i^T$ is exact only for orthogonal subspaces",
    )
    fig.suptitle("(b) averaging and extraction")
    return fig


def fig_isotropic(r: dict) -> Figure:
    s = r["series"]
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for w, err in s["mean_err"].items():
        line = ax.loglog(s["var"], err, "o-", ms=3, label=f"w = {float(w):g}")[0]
        ax.axvline(0.01 / float(w) ** 2, color=line.get_color(), ls=":", lw=1)
    ax.set(
        xlabel=r"key noise variance var  ($\Sigma_i = \mathrm{var}\cdot I$)",
        ylabel=r"mean $\|c - \frac{1}{2}(v_a + v_b)\|$",
        title=r"(c)i: 'tiny' means $w^2\,\mathrm{var} \ll 1$  (dotted: $w\sqrt{\mathrm{var}} = 0.1$)",
    )
    ax.legend()
    return fig


def fig_rank_one(r: dict) -> Figure:
    s, nb = r["series"], r["numbers"]
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    edges = np.asarray(s["edges"])
    centers = 0.5 * (edges[1:] + edges[:-1])
    ax1.bar(centers, s["measured_frac"], width=edges[1] - edges[0], alpha=0.6, label=f"measured, {nb['samples']:,} samples")
    predicted = r"predicted: $1/(1+e^{(1-\varepsilon)w})$, $\varepsilon \sim N(1, \frac{1}{2})$"
    ax1.plot(centers, s["expected_frac"], "k.", ms=6, label=predicted)
    ax1.set_yscale("log")
    ax1.set(xlabel=r"weight on $v_a$", ylabel="fraction of samples", title=r"$c$ swings between $v_b$ (0) and $v_a$ (1)")
    ax1.legend(fontsize=8, loc="upper center")
    eps = np.asarray(s["eps_sample"])
    ax2.plot(eps, s["weight_sample"], ".", ms=2, alpha=0.5, label="samples")
    grid = np.linspace(eps.min(), eps.max(), 400)
    ax2.plot(grid, 1 / (1 + np.exp((1 - grid) * nb["w"])), "k-", lw=1, label=r"$1/(1+e^{(1-\varepsilon)w})$")
    ax2.set(
        xlabel=r"$\varepsilon = \mu_a^T k_a$", ylabel=r"weight on $v_a$", title=f"each sample against the formula, w = {nb['w']:g}"
    )
    ax2.legend(fontsize=8)
    fig.suptitle(r"(c)ii  $\Sigma_a = \mathrm{var}\cdot I + \frac{1}{2}\mu_a\mu_a^T$:  $k_a \approx \varepsilon\,\mu_a$")
    return fig


def fig_heads(r: dict) -> Figure:
    s, nb = r["series"], r["numbers"]
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    h = nb["head_counts"]
    ax1.plot(h, nb["std_same"], "o-", label=r"design (1): every $q = w(\mu_a+\mu_b)$")
    ax1.plot(h, nb["std_alt"], "s-", label=r"design (2): $q = w\mu_a, w\mu_b, w\mu_a, \dots$")
    ax1.plot(h, nb["std_indep"], "^--", color="gray", label="if each head drew its own keys (it does not)")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(h, [str(x) for x in h])
    ax1.set_ylim(0, 0.5)
    ax1.set(xlabel="heads", ylabel=r"std of weight on $v_a$", title="shared keys: design (1) does not improve")
    ax1.legend(fontsize=8)
    ax2.plot(s["w"], s["w_std_same"], "o-", ms=3, label="design (1), 2 heads")
    ax2.plot(s["w"], s["w_std_alt"], "s-", ms=3, label="design (2), 2 heads")
    floor = rf"floor from $P(\varepsilon < 0)$ = {nb['p_eps_negative']:.1%}"
    ax2.axhline(nb["alt_std_floor"], color="gray", ls=":", label=floor)
    ax2.set(xlabel="w", ylabel=r"std of weight on $v_a$", title="spread against w")
    ax2.legend(fontsize=8)
    edges = np.linspace(0, 1, 41)
    centers = 0.5 * (edges[1:] + edges[:-1])
    for name, label in (("same", "design (1)"), ("alt", "design (2)")):
        ax3.bar(centers, s["hist_two_heads"][name], width=edges[1] - edges[0], alpha=0.55, label=label)
    ax3.set_yscale("log")
    ax3.set(xlabel=r"weight on $v_a$", ylabel="fraction of samples", title="distribution with 2 heads")
    ax3.legend(fontsize=8)
    fig.suptitle(f"(d) several heads, all seeing the same sampled keys (w = {nb['w']:g})")
    return fig


def fig_qkv(r1: dict, r2: dict) -> Figure:
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3)
    S = np.asarray(r2["numbers"]["scores_over_beta6"])
    S = np.where(np.abs(S) < 1e-9, 0.0, S)  # rounding-level entries are zeros
    ax0.imshow(S, cmap="Blues", vmin=0, vmax=2.5)
    for i in range(3):
        for j in range(3):
            color = "white" if S[i, j] > 1.5 else "black"
            ax0.text(j, i, f"{S[i, j]:g}", ha="center", va="center", fontsize=14, color=color)
    ax0.set_xticks(range(3), ["$k_1$", "$k_2$", "$k_3$"])
    ax0.set_yticks(range(3), ["$q_1$", "$q_2$", "$q_3$"])
    ax0.set_title(r"(e)ii scores $k_j^Tq_i\,/\,\beta^6$ (row = query)")
    s1 = r1["series"]
    ax1.semilogy(s1["beta"], _floor(s1["err"]), "o-", ms=3)
    ax1.set(xlabel=r"$\beta$", ylabel=r"$\|c_2 - u_a\| / \beta$", title=r"(e)i  $q = k = v = x$:  $c_2 \to u_a$")
    s2 = r2["series"]
    ax2.semilogy(s2["beta"], _floor(s2["err_c2"]), "o-", ms=3, label=r"$\|c_2 - u_b\| / \beta$")
    ax2.semilogy(s2["beta"], _floor(s2["err_c1"]), "s-", ms=3, label=r"$\|c_1 - (u_b - u_c)\| / \beta$")
    ax2.set(xlabel=r"$\beta$", ylabel="relative error", title="(e)ii designed Q, K, V")
    ax2.legend(fontsize=9)
    return fig


def fig_attention(r: dict) -> Figure:
    maps = r["series"]["maps"]
    match = r["series"]["maps_match"]
    kinds = list(maps)
    n_head = len(maps[kinds[0]][0])
    T = len(maps[kinds[0]][0][0])
    fig = Figure(figsize=(4.5 * n_head + 1, 3.4 * len(kinds)), layout="constrained")
    axes = np.asarray(fig.subplots(len(kinds), n_head, squeeze=False))
    acc = {"key-query": r["numbers"]["accuracy_key_query"], "synthesizer": r["numbers"]["accuracy_synthesizer"]}
    for i, kind in enumerate(kinds):
        a = np.asarray(maps[kind])  # (examples, heads, T)
        for h in range(n_head):
            ax = axes[i, h]
            im = ax.imshow(a[:, h, :], cmap="viridis", vmin=0, vmax=1, aspect="auto")
            ax.plot(match, range(len(match)), "o", mfc="none", mec="red", ms=9)
            ax.set_xticks(range(T), [str(t) for t in range(T - 1)] + ["q"])
            ax.set(xlabel="attended position", ylabel="example", title=f"{kind}, head {h}: accuracy {acc[kind]:.2f}")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight of the query position")
    fig.suptitle("(g) where the query position looks; red circle: the pair holding the queried key")
    return fig


def fig_training(r: dict) -> Figure:
    nb = r["numbers"]
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for kind, hist in r["series"]["history"].items():
        steps, loss = zip(*hist)
        ax.plot(steps, loss, label=kind)
    n_values, n_pairs = nb["config"]["n_values"], nb["config"]["n_pairs"]
    ax.axhline(math.log(n_values), color="gray", ls=":", label=f"ln {n_values}: uniform guess")
    present = f"ln {n_pairs}: uniform over the {n_pairs} values present"
    ax.axhline(nb["loss_uniform_among_present"], color="gray", ls="--", label=present)
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="training loss (cross-entropy)", title="(g) one attention layer on the lookup task")
    ax.legend(fontsize=8)
    return fig


def figures(rows: list[dict], out_dir: Path) -> dict[str, str]:
    """Write every figure; returns id -> file name (relative to out_dir)."""
    by = {r["id"]: r for r in rows}
    plan = {
        "a": ("a_copying.png", lambda: fig_copying(by["a"])),
        "b": ("b_averaging.png", lambda: fig_averaging(by["b"])),
        "c1": ("c1_isotropic_noise.png", lambda: fig_isotropic(by["c1"])),
        "c2": ("c2_rank_one_noise.png", lambda: fig_rank_one(by["c2"])),
        "d": ("d_heads.png", lambda: fig_heads(by["d"])),
        "e": ("e_designed_qkv.png", lambda: fig_qkv(by["e1"], by["e2"])),
        "g": ("g_attention_maps.png", lambda: fig_attention(by["g"])),
        "g_train": ("g_training.png", lambda: fig_training(by["g"])),
    }
    names = {}
    for key, (name, make) in plan.items():
        save_figure(make(), out_dir / name)
        names[key] = name
    return names


# -----------------------------------------------------------------------------
# report.md


def _e(x: float) -> str:
    return f"{x:.1e}"


def _combo(coefs: list[float], names: tuple[str, ...] = ("u_a", "u_b", "u_c", "u_d")) -> str:
    """Coordinates to a readable sum: [0, 1, -1, 0] -> 'u_b − u_c'."""
    text = ""
    for x, name in zip(coefs, names):
        if abs(x) < 1e-9:
            continue
        size = "" if abs(abs(x) - 1) < 1e-9 else f"{abs(x):g}"
        sign = ("−" if x < 0 else "") if not text else (" − " if x < 0 else " + ")
        text += sign + size + name
    return text or "0"


def markdown(rows: list[dict], figs: dict[str, str], seed: int, quick: bool) -> str:
    by = {r["id"]: r for r in rows}
    a, b, c1, c2, d, e1, e2, g = (by[k] for k in ("a", "b", "c1", "c2", "d", "e1", "e2", "g"))
    an, bn, c1n, c2n, dn, e1n, e2n, gn = (r["numbers"] for r in (a, b, c1, c2, d, e1, e2, g))
    sa = a["series"]
    pick = [0, 10, 20, 40]  # margins 0, 5, 10, 20
    a_rows = "\n".join(
        f"| {sa['margin'][i]:g} | {sa['alpha_j'][i]:.9f} | {_e(1 - sa['alpha_j'][i])} | "
        f"{_e(sa['err'][i])} | {_e(sa['bound'][i])} |"
        for i in pick
    )
    sb = b["series"]
    b_rows = "\n".join(f"| {sb['w'][i]:g} | {sb['alpha_a'][i]:.9f} | {_e(sb['err'][i])} |" for i in (0, 4, 10, 20, 40))
    hc = dn["head_counts"]
    d_rows = "\n".join(
        f"| {h} | {dn['std_same'][i]:.6f} | {dn['std_alt'][i]:.6f} | {dn['mean_alt'][i]:.3f} | {dn['median_alt'][i]:.4f} | "
        f"{dn['near_half_alt'][i]:.1%} | {dn['std_indep'][i]:.4f} |"
        for i, h in enumerate(hc)
    )
    S = e2n["scores_over_beta6"]
    # entries at rounding level (|x| < 1e-12) print as 0; their true size is in max_score_dev
    s_rows = "\n".join(
        f"| q_{i + 1} | " + " | ".join(f"{0.0 if abs(x) < 1e-12 else x:.6f}" for x in S[i]) + " |" for i in range(3)
    )

    vc, kc, qc = ([_combo(row) for row in e2n[k]] for k in ("v_coords", "k_coords", "q_coords"))
    vkq_rows = "\n".join(f"| {i + 1} | {vc[i]} | β²·({kc[i]}) | β²·({qc[i]}) |" for i in range(3))
    var_rows = "\n".join(
        f"| {name} | {v['dist_to_x2']:.1e} | {v['dist_to_ub']:.3f} | {v['hull_dist_to_ub']:.3f} |"
        for name, v in e1n["variants"].items()
    )
    cfg = gn["config"]
    inv_k, inv_s = gn["invariance_key_query"], gn["invariance_synthesizer"]
    inv0_k, inv0_s = gn["invariance_untrained_key_query"], gn["invariance_untrained_synthesizer"]
    att_k = ", ".join(f"{x:.3f}" for x in gn["attention_on_match_key_query"])
    att_s = ", ".join(f"{x:.3f}" for x in gn["attention_on_match_synthesizer"])
    quick_note = ""
    if quick:
        quick_note = "\n> Made with `--quick`: the learning experiment (g) is shrunk; its numbers differ from the full run.\n"

    values = {
        "seed": str(seed),
        "quick_flag": str(" --quick" if quick else ""),
        "quick_note": str(quick_note),
        "table_rows": str(table(rows)),
        "e_an_err_at_20": str(_e(an['err_at_20'])),
        "dn_std_same_0_p6f": format(dn['std_same'][0], ".6f"),
        "e_dn_std_same_range": str(_e(dn['std_same_range'])),
        "S_1_0_p6f": format(S[1][0], ".6f"),
        "S_1_2_p1e": format(S[1][2], ".1e"),
        "e2n_err_c2_at_1_p2f": format(e2n['err_c2_at_1'], ".2f"),
        "e2n_err_c1_at_1_p2f": format(e2n['err_c1_at_1'], ".2f"),
        "dn_std_alt_1_p3f": format(dn['std_alt'][1], ".3f"),
        "a_construction": str(a['construction']),
        "a_rows": str(a_rows),
        "e_an_max_dev_from_analytic": str(_e(an['max_dev_from_analytic'])),
        "an_margin_for_0_99_p2f": format(an['margin_for_0_99'], ".2f"),
        "figs_a": str(figs['a']),
        "b_construction": str(b['construction']),
        "b_rows": str(b_rows),
        "e_bn_extract_err": str(_e(bn['extract_err'])),
        "e_bn_Mc_minus_half_va": str(_e(bn['Mc_minus_half_va'])),
        "bn_leak_at_10deg_p1pct": format(bn['leak_at_10deg'], ".1%"),
        "figs_b": str(figs['b']),
        "c1_construction": str(c1['construction']),
        "c1n_weight_mean_p4f": format(c1n['weight_mean'], ".4f"),
        "c1n_weight_std_p4f": format(c1n['weight_std'], ".4f"),
        "c1n_err_mean_p4f": format(c1n['err_mean'], ".4f"),
        "c1n_err_max_p4f": format(c1n['err_max'], ".4f"),
        "figs_c1": str(figs['c1']),
        "c2_construction": str(c2['construction']),
        "c2n_eps_mean_p3f": format(c2n['eps_mean'], ".3f"),
        "c2n_eps_var_p3f": format(c2n['eps_var'], ".3f"),
        "e_c2n_max_formula_dev": str(_e(c2n['max_formula_dev'])),
        "c2n_weight_mean_p3f": format(c2n['weight_mean'], ".3f"),
        "c2n_weight_std_p3f": format(c2n['weight_std'], ".3f"),
        "c2n_frac_below_0_1_p1pct": format(c2n['frac_below_0_1'], ".1%"),
        "c2n_frac_above_0_9_p1pct": format(c2n['frac_above_0_9'], ".1%"),
        "c2n_max_bin_frac_dev_p4f": format(c2n['max_bin_frac_dev'], ".4f"),
        "figs_c2": str(figs['c2']),
        "d_construction": str(d['construction']),
        "d_rows": str(d_rows),
        "dn_median_alt_1_p4f": format(dn['median_alt'][1], ".4f"),
        "dn_near_half_alt_1_p1pct": format(dn['near_half_alt'][1], ".1%"),
        "dn_std_same_1_p3f": format(dn['std_same'][1], ".3f"),
        "dn_p_eps_negative_p1pct": format(dn['p_eps_negative'], ".1%"),
        "dn_alt_std_floor_p3f": format(dn['alt_std_floor'], ".3f"),
        "dn_mean_alt_0_p3f": format(dn['mean_alt'][0], ".3f"),
        "figs_d": str(figs['d']),
        "e1n_err_at_1_p2f": format(e1n['err_at_1'], ".2f"),
        "e_e1n_err_at_3": str(_e(e1n['err_at_3'])),
        "var_rows": str(var_rows),
        "e1n_err_at_1_p0pct": format(e1n['err_at_1'], ".0%"),
        "e2n_beta_g": format(e2n['beta'], "g"),
        "vkq_rows": str(vkq_rows),
        "e_e2n_max_score_dev": str(_e(e2n['max_score_dev'])),
        "s_rows": str(s_rows),
        "e2n_err_c2_at_1_p3f": format(e2n['err_c2_at_1'], ".3f"),
        "e2n_err_c1_at_1_p3f": format(e2n['err_c1_at_1'], ".3f"),
        "e_e2n_err_c2_at_1_5": str(_e(e2n['err_c2_at_1_5'])),
        "e_e2n_err_c1_at_1_5": str(_e(e2n['err_c1_at_1_5'])),
        "e2n_beta_for_1e_3_p2f": format(e2n['beta_for_1e_3'], ".2f"),
        "figs_e": str(figs['e']),
        "cfg_n_pairs": str(cfg['n_pairs']),
        "cfg_n_keys": str(cfg['n_keys']),
        "cfg_n_values": str(cfg['n_values']),
        "cfg_n_head": str(cfg['n_head']),
        "cfg_d": str(cfg['d']),
        "cfg_steps": str(cfg['steps']),
        "cfg_batch": str(cfg['batch']),
        "cfg_eval_size": str(cfg['eval_size']),
        "gn_accuracy_key_query_p3f": format(gn['accuracy_key_query'], ".3f"),
        "gn_accuracy_synthesizer_p3f": format(gn['accuracy_synthesizer'], ".3f"),
        "gn_loss_key_query_p2g": format(gn['loss_key_query'], ".2g"),
        "gn_loss_synthesizer_p3f": format(gn['loss_synthesizer'], ".3f"),
        "att_k": str(att_k),
        "att_s": str(att_s),
        "inv_k_max_abs_change_p3f": format(inv_k['max_abs_change'], ".3f"),
        "inv_s_max_abs_change_p1e": format(inv_s['max_abs_change'], ".1e"),
        "inv_k_mean_tv_change_p3f": format(inv_k['mean_tv_change'], ".3f"),
        "inv_s_mean_tv_change_p1e": format(inv_s['mean_tv_change'], ".1e"),
        "inv0_k_max_abs_change_p3f": format(inv0_k['max_abs_change'], ".3f"),
        "inv0_s_max_abs_change_p1e": format(inv0_s['max_abs_change'], ".1e"),
        "gn_chance_p4f": format(gn['chance'], ".4f"),
        "gn_chance_among_present_p3f": format(gn['chance_among_present'], ".3f"),
        "gn_loss_uniform_among_present_p3f": format(gn['loss_uniform_among_present'], ".3f"),
        "figs_g": str(figs['g']),
        "figs_g_train": str(figs['g_train']),
    }
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


# -----------------------------------------------------------------------------
# results.json


def write_json(rows: list[dict], path: Path, seed: int, quick: bool) -> None:
    payload = dict(seed=seed, quick=quick, claims=[{k: v for k, v in r.items() if k != "seconds"} for r in rows])
    write_text_atomic(path, json.dumps(payload, indent=1) + "\n")
