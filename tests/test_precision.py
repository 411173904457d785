"""The arithmetic choices: tf32 is CUDA-only and scoped; auto stays fp32 until measured otherwise."""

from pathlib import Path

import pytest
import torch

from factgpt.errors import InputError
from factgpt.precision import autocast, matmul_precision, resolve

ROOT = Path(__file__).resolve().parent.parent


def test_tf32_is_refused_on_a_cpu():
    with pytest.raises(InputError, match="tf32 is a CUDA precision"):
        resolve("tf32", torch.device("cpu"))
    assert resolve("tf32", torch.device("cuda")) == "tf32"  # resolving needs no GPU


def test_auto_is_fp32_everywhere():
    assert resolve("auto", torch.device("cpu")) == resolve("auto", torch.device("cuda")) == "fp32"


@pytest.mark.parametrize("enter", [matmul_precision, autocast])
def test_tf32_products_only_inside_the_context(enter):
    before = torch.get_float32_matmul_precision()
    with enter("tf32", torch.device("cuda")):  # only flips a flag: runs without a GPU
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before
    with enter("tf32", torch.device("cpu")), enter("fp32", torch.device("cuda")):
        assert torch.get_float32_matmul_precision() == before


def test_tf32_setting_is_restored_after_an_error():
    before = torch.get_float32_matmul_precision()
    with pytest.raises(RuntimeError), matmul_precision("tf32", torch.device("cuda")):
        raise RuntimeError("boom")
    assert torch.get_float32_matmul_precision() == before


def test_auto_trains_in_bf16_only_for_a_profile_checked_on_this_cpu_kind(monkeypatch):
    """bf16 for training only where the CPU kind passed the screen, has the instructions, and the
    profile's own check passed on that kind; fp32 for any other profile or kind (a family-26 EPYC
    with avx512_bf16 was never checked), without a profile, for decoding (committed predictions
    are compared exactly), without the instructions, and against an explicit fp32."""
    import factgpt.precision as P
    from factgpt.runinfo import CpuKind

    cpu = torch.device("cpu")
    zen4, xeon = CpuKind("AuthenticAMD", 25, 17), CpuKind("GenuineIntel", 6, 167)
    unchecked = CpuKind("AuthenticAMD", 26, 2)
    assert zen4 in P.BF16_TRAINING_CPUS and xeon in P.BF16_TRAINING_CPUS
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    for kind in (zen4, xeon, unchecked, None):  # no profile has passed its own check yet
        monkeypatch.setattr(P, "cpu_kind", lambda kind=kind: kind)
        assert P.resolve("auto", cpu, training=True, profile="course_keyed") == "fp32"
    monkeypatch.setattr(P, "BF16_PROFILE_CHECKS", {"checked": frozenset({zen4, unchecked})})
    monkeypatch.setattr(P, "cpu_kind", lambda: zen4)
    assert P.resolve("auto", cpu, training=True, profile="checked") == "bf16"
    assert P.resolve("auto", cpu, training=True, profile="other") == "fp32"
    assert P.resolve("auto", cpu, training=True) == "fp32"  # a trainer that names no profile
    assert P.resolve("auto", cpu, profile="checked") == "fp32"  # decoding
    assert P.resolve("fp32", cpu, training=True, profile="checked") == "fp32"
    monkeypatch.setattr(P, "cpu_kind", lambda: xeon)  # screened, but the profile was checked elsewhere
    assert P.resolve("auto", cpu, training=True, profile="checked") == "fp32"
    monkeypatch.setattr(P, "cpu_kind", lambda: unchecked)  # the profile passed, the kind was never screened
    assert P.resolve("auto", cpu, training=True, profile="checked") == "fp32"
    monkeypatch.setattr(P, "cpu_kind", lambda: zen4)
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    assert P.resolve("auto", cpu, training=True, profile="checked") == "fp32"


@pytest.mark.golden
def test_bf16_profiles_are_those_whose_committed_profile_check_passed():
    """BF16_PROFILE_CHECKS holds exactly the (profile, CPU kind) pairs whose committed
    bench/precision_profile_check.py verdict passed (three seeds, 500 steps, loss and held-out accuracy)
    with bf16 cheaper than fp32 there (auto_bf16): a check that passed where bf16 saves no time
    switches nothing on."""
    import json

    import factgpt.precision as P
    from factgpt.runinfo import CpuKind

    passed: dict[str, set] = {}
    for f in sorted((ROOT / "results" / "bench").glob("precision-profile-*.json")):
        d = json.loads(f.read_text())
        if d["auto_bf16"]:
            assert d["passed"] and d["bf16_cheaper"] and d["seeds"] >= 3 and d["steps"] >= 500 and d["enough"]
            passed.setdefault(d["profile"], set()).add(CpuKind(*d["cpu_kind"]))
    assert passed == {k: set(v) for k, v in P.BF16_PROFILE_CHECKS.items()}


def _curve(losses: list[float], accuracy: float, steps: int = 600, minutes: float = 10.0) -> dict:
    return {"probes": [{"epoch": 10 * (i + 1), "step": steps * (i + 1) // len(losses), "pretrain_loss": x,
                        "heldout_accuracy": accuracy, "pretrain_minutes": minutes * (i + 1) / len(losses)}
                       for i, x in enumerate(losses)]}


def test_the_profile_check_switches_bf16_on_only_where_it_is_cheaper():
    """Passing on learning is not enough for auto: bf16's median minutes must be at most 90% of
    fp32's; one fp32 run slowed by other work (an outlier) does not make bf16 look cheaper."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ppc", ROOT / "bench" / "precision_profile_check.py")
    ppc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ppc)
    fp32 = [_curve([2.0, 1.0], 30, minutes=m) for m in (9.4, 6.9, 7.0)]
    same_time = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.0, 1.0], 30, minutes=7.0)] * 3})
    assert same_time["passed"] and not same_time["bf16_cheaper"] and not same_time["auto_bf16"]
    assert same_time["bf16_time_ratio"] == pytest.approx(1.0)
    faster = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.0, 1.0], 30, minutes=4.0)] * 3})
    assert faster["passed"] and faster["bf16_cheaper"] and faster["auto_bf16"]
    # cheaper but not learning the same: nothing switched on
    worse = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.0, 1.9], 30, minutes=4.0)] * 3})
    assert worse["bf16_cheaper"] and not worse["passed"] and not worse["auto_bf16"]


def test_the_profile_check_passes_only_inside_fp32s_spread_with_enough_seeds_and_steps():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ppc", ROOT / "bench" / "precision_profile_check.py")
    ppc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ppc)
    fp32 = [_curve([2.0, 1.0], 0.30), _curve([2.1, 1.1], 0.32), _curve([2.2, 1.2], 0.34)]
    same = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.1, 1.1], 0.31)] * 3})
    assert same["passed"] and same["losses_inside"] and same["heldout_accuracy"]["inside"]
    # the loss learns like fp32 but fewer facts come out: not passed
    fewer = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.1, 1.1], 0.20)] * 3})
    assert fewer["losses_inside"] and not fewer["heldout_accuracy"]["inside"] and not fewer["passed"]
    # one probe's loss outside the widened range (1.0 to 1.4 at the last): not passed
    worse = ppc.verdict({"fp32": fp32, "bf16": [_curve([2.1, 1.5], 0.31)] * 3})
    assert not worse["losses_inside"] and not worse["passed"]
    # inside, but two seeds or 300 steps are not enough to say
    assert not ppc.verdict({"fp32": fp32[:2], "bf16": [_curve([2.05, 1.05], 0.31)] * 2})["passed"]
    short = [_curve([2.0, 1.0], 0.3, steps=300), _curve([2.1, 1.1], 0.32, 300), _curve([2.2, 1.2], 0.34, 300)]
    assert not ppc.verdict({"fp32": short, "bf16": [_curve([2.1, 1.1], 0.31, 300)] * 3})["passed"]


@pytest.mark.golden
def test_bf16_cpu_kinds_are_those_whose_committed_check_passed():
    """BF16_TRAINING_CPUS holds exactly the CPU kinds whose committed learning comparison
    (results/bench/learning-equivalence-bf16-cpu-*.json) had bf16 inside three or more fp32 seeds'
    spread in every window: the switch follows a measurement, not a belief."""
    import json
    import re

    import factgpt.precision as P
    from factgpt.runinfo import CpuKind

    vendors = {"AMD": "AuthenticAMD", "Intel": "GenuineIntel"}
    passed = set()
    files = sorted((ROOT / "results" / "bench").glob("learning-equivalence-bf16-cpu-*.json"))
    assert files
    for f in files:
        d = json.loads(f.read_text())
        m = re.search(r"family (\d+) model (\d+)", d["device"])
        assert m, f"{f.name}: no CPU family/model in {d['device']!r}"
        vendor = next((v for k, v in vendors.items() if d["device"].startswith(k)), None)
        assert vendor, f"{f.name}: unknown CPU vendor in {d['device']!r}"
        if d["all_windows_inside"] and len(d["seeds"]) >= 3:
            passed.add(CpuKind(vendor, int(m[1]), int(m[2])))
    assert passed == set(P.BF16_TRAINING_CPUS)


def test_the_profile_check_keeps_no_run_of_other_settings(tmp_path):
    """A finished run found in the check's folder is reused only if it trained exactly this profile,
    precision, variant and seed: another profile's curve would be compared as if it were this one."""
    import importlib.util
    import json

    from factgpt.config import load
    from factgpt.errors import InputError

    spec = importlib.util.spec_from_file_location("ppc", ROOT / "bench" / "precision_profile_check.py")
    ppc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ppc)
    other = load("profiles", "quick").with_settings(common={"precision": "fp32"})
    (tmp_path / "fp32-s0").mkdir()
    (tmp_path / "fp32-s0" / "curve.json").write_text(json.dumps(
        {"profile": other.to_dict(), "variant": "vanilla", "seed": 0, "pretrain_done": True, "probes": []}))
    with pytest.raises(InputError, match="a run of other settings is here"):
        ppc.main(["--profile", "smoke", "--seeds", "0", "--out", str(tmp_path), "--results", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
