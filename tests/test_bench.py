"""The benchmark's CPU-runnable parts: both paths timed, figures written and consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factgpt.benchmark import flops_per_token, run_bench
from factgpt.model import GPT, GPTConfig


def test_bench_writes_both_paths_and_ratios(tmp_path: Path):
    res = run_bench("cpu", steps=2, finetune_steps=1, eval_reference=3, out=tmp_path, precision="fp32",
                    model_overrides=dict(n_layer=1, n_head=2, n_embd=32))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".md")
    saved = json.loads((tmp_path / files[0]).read_text())
    assert saved["paths"].keys() == {"reference", "fast"}
    ref, fast = saved["paths"]["reference"], saved["paths"]["fast"]
    for p in (ref, fast):
        pre = p["pretrain"]
        assert pre["steps"] == 2 and pre["ms_per_step"] > 0 and 0 < pre["mfu"] < 1.5
        # 650 epochs of 23 steps, extrapolated from the timed steps and labelled so.
        assert abs(pre["course_pretrain_s"] - pre["ms_per_step"] / 1000 * 650 * 23) < 1e-6
        assert "extrapolated" in pre["course_pretrain_label"]
        assert pre["real_tokens_per_s"] < pre["all_positions_per_s"]  # padding is not real work
    assert fast["evaluate"]["questions"] == 500 and ref["evaluate"]["questions"] == 3
    r = saved["ratios_fast_over_reference"]
    assert abs(r["pretrain_real_tokens_per_s"] - fast["pretrain"]["real_tokens_per_s"] / ref["pretrain"]["real_tokens_per_s"]) < 1e-9
    assert "fast / reference" in (tmp_path / files[1]).read_text()
    assert res["device"] == saved["device"]


def test_flops_per_token_formula():
    m = GPT(GPTConfig(vocab_size=256))
    n = sum(p.numel() for k, p in m.named_parameters() if k not in ("tok_emb.weight", "pos_emb"))
    assert flops_per_token(m, 64) == 6 * n + 6 * 4 * 256 * 64


def test_gpu_script_refuses_without_cuda(tmp_path: Path):
    script = Path(__file__).resolve().parent.parent / "bench" / "gpu.sh"
    # no device visible, whatever this machine has
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0 and "no CUDA device" in run.stderr


def test_profile_step_summarises_a_step(tmp_path: Path):
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, str(root / "bench" / "profile_step.py"), "--device", "cpu", "--steps", "1",
                          "--profiled", "1", "--precision", "fp32", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    (res_file,) = tmp_path.glob("profile-cpu-*-fp32.json")
    res = json.loads(res_file.read_text())
    assert res["ms_per_step"] > 0 and res["precision"] == "fp32" and not res["compile"]
    assert any("mm" in op["name"] for op in res["top_ops"])  # matrix products are where a CPU step goes
    assert "Self CPU" in res_file.with_suffix(".txt").read_text()


def test_finetune_sweep_finetunes_a_stopped_pretraining(tmp_path: Path):
    """bench/finetune_sweep.py on the training state a curve stopped on time leaves: one row per setting."""
    from conftest import TINY_PROFILE
    from factgpt.cli import main
    from factgpt.tables import sweep_table

    root = Path(__file__).resolve().parent.parent
    prof = tmp_path / "tiny.json"
    prof.write_text(json.dumps(TINY_PROFILE))
    assert main(["curve", "--profile", str(prof), "--out", str(tmp_path / "c"), "--quiet", "--device", "cpu",
                 "--precision", "fp32", "--time_limit", "0.000001"]) == 0
    state = tmp_path / "c" / "pretrain.safetensors.state"
    assert state.is_file() and not (tmp_path / "c" / "pretrain.safetensors").exists()
    run = subprocess.run([sys.executable, str(root / "bench" / "finetune_sweep.py"), "--profile", str(prof),
                          "--pretrained", str(state), "--settings", "1:6e-4", "1:1e-3:512", "--seeds", "0", "1",
                          "--out", str(tmp_path / "sweep.json")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    rec = json.loads((tmp_path / "sweep.json").read_text())
    assert rec["pretrained_steps"] == 1 and rec["heldout"] == 300 and rec["seeds"] == [0, 1]
    assert [(s["epochs"], s["learning_rate"], s["batch_size"]) for s in rec["settings"]] == [(1, 6e-4, 256), (1, 1e-3, 512)]
    for s in rec["settings"]:
        assert [r["seed"] for r in s["runs"]] == [0, 1]
        for r in s["runs"]:
            assert 0 <= r["heldout_correct"] <= r["heldout_total"] == 300
        accs = [r["heldout_accuracy"] for r in s["runs"]]
        assert s["heldout_accuracy"]["mean"] == pytest.approx(sum(accs) / 2)
    table = sweep_table(rec).splitlines()
    assert len(table) == 2 + 2 + 2 and "| 1 | 0.001 | 512 | 2 |" in table[-1] and "finetuning seeds 0, 1" in table[0]


def test_sweep_table_renders_a_one_seed_sweep_of_the_older_format():
    """Sweeps committed before --seeds hold one flat result per setting; they still render row by row."""
    from factgpt.tables import sweep_table

    rec = json.loads((Path(__file__).resolve().parent.parent / "results" / "course_keyed" / "finetune_sweep" /
                      "front80_span_bf16_ep100.json").read_text())
    table = sweep_table(rec).splitlines()
    assert "seed 0" in table[0] and len(table) == 4 + len(rec["settings"])
    assert "17.3% (52/300)" in "\n".join(table)


def test_learning_equivalence_compares_the_chosen_pair(tmp_path: Path, monkeypatch):
    """--compare bf16 runs the fast path in fp32 and in bf16 and judges bf16 against fp32's seed spread."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("learning_equivalence", root / "bench" / "learning_equivalence.py")
    le = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(le)
    calls = []

    def fake_run(path: str, seed: int, epochs: int, ft_epochs: int) -> dict:
        calls.append((path, seed))
        # fp32 seeds 2.00 and 2.02 (spread 0.02: inside is 1.98..2.04); bf16 drifts above in its second half
        base = 2.0 + 0.02 * seed
        drift = 0.1 if path == "fast-bf16" else 0.0
        losses = [base] * 40 + [base + drift] * 40
        return {"path": path, "seed": seed, "pretrain_losses": losses, "finetune_losses": [1.0],
                "dev_correct": 0, "dev_accuracy": 0.0, "pretrain_seconds": 1.0, "precision": "fp32"}

    monkeypatch.setattr(le, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["learning_equivalence.py", "--compare", "bf16", "--out", str(tmp_path)])
    le.main()
    assert calls == [("fast", 0), ("fast-bf16", 0), ("fast", 1), ("fast-bf16", 1)]
    (out,) = tmp_path.glob("learning-equivalence-bf16-cpu-*.json")
    rec = json.loads(out.read_text())
    assert rec["baseline"] == "fast" and rec["candidate"] == "fast-bf16"
    assert rec["paths"]["fast-bf16"]["precision"] == "bf16" and rec["paths"]["fast"]["precision"] == "fp32"
    assert rec["windows_inside_baseline_spread"] == "2/4" and rec["all_windows_inside"] is False


def test_device_slug_keeps_the_bf16_instructions(monkeypatch):
    import torch

    import factgpt.benchmark as B

    names = {"Intel(R) Xeon(R) Processor (family 6 model 167, avx512_bf16, amx_bf16) CPU, 2 threads":
             "cpu-intel-xeon-processor-amx",
             "AMD EPYC 9B14 (family 25 model 17, avx512_bf16) CPU, 2 threads": "cpu-amd-epyc-9b14-avx512-bf16",
             "AMD EPYC CPU, 2 threads": "cpu-amd-epyc"}
    for name, slug in names.items():
        monkeypatch.setattr(B, "device_name", lambda d, name=name: name)
        assert B.device_slug(torch.device("cpu")) == slug


def test_seed_time_adds_up_a_seed_from_its_stages(tmp_path: Path):
    """bench/seed_time.py: every stage of a seed timed, its minutes its median step times its step count."""
    from conftest import TINY_PROFILE

    root = Path(__file__).resolve().parent.parent
    prof = tmp_path / "tiny.json"
    prof.write_text(json.dumps(TINY_PROFILE))
    run = subprocess.run([sys.executable, str(root / "bench" / "seed_time.py"), "--profile", str(prof), "--steps", "2",
                          "--precisions", "fp32", "--measured", "2.0", "--measured_precision", "fp32", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    (res_file,) = (tmp_path / "o").glob("seed-time-*.json")
    res = json.loads(res_file.read_text())
    assert list(res["stages"]) == ["finetune (no pretraining)", "pretrain vanilla", "finetune vanilla",
                                   "pretrain synthesizer", "finetune synthesizer"]
    for s in res["stages"].values():
        assert len(s["ms_all"]["fp32"]) == 2 and s["total_steps"] >= 1  # one epoch a stage
        assert s["minutes"]["fp32"] == pytest.approx(s["ms_per_step"]["fp32"] * s["total_steps"] / 60000)
    # one epoch each: wiki.txt's lines at batch 128 are more steps than the training pairs at 256
    assert res["stages"]["pretrain vanilla"]["total_steps"] > res["stages"]["finetune vanilla"]["total_steps"]
    total = sum(s["minutes"]["fp32"] for s in res["stages"].values()) + 3 * res["evaluate_minutes_each"]
    assert res["seed_minutes"]["fp32"] == pytest.approx(total)
    assert res["measured"]["estimate_over_measured"] == pytest.approx(total / 2.0)
    assert "fp32_over_bf16" not in res and res["precisions"] == ["fp32"]
