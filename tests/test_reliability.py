"""Long runs survive being killed; data-parallel training matches one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

TINY = ["vanilla", "--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--quiet"]


def factgpt(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "factgpt", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=600)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def max_diff(a: Path, b: Path) -> float:
    x, y = load_file(str(a)), load_file(str(b))
    assert x.keys() == y.keys()
    return max((x[k] - y[k]).abs().max().item() for k in x)


def test_sigkill_then_resume_is_bit_exact(tmp_path: Path):
    args = ["pretrain", *TINY, "--max_epochs", "4"]
    factgpt(*args, "--writing_params_path", "full.params", cwd=tmp_path)
    # The interrupted run saves its state every 3 steps and is killed hard (SIGKILL, by
    # itself: no timing race) right after the step that follows its second save.
    killer = ("import os, signal, sys\n"
              "import factgpt.train as t\n"
              "step = t.Trainer.step\n"
              "def step_then_die(self, batch):\n"
              "    loss = step(self, batch)\n"
              "    if self.progress.step == 7:\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return loss\n"
              "t.Trainer.step = step_then_die\n"
              "from factgpt.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", killer, *args, "--writing_params_path", "part.params",
                           "--save_every", "3", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "part.params.state").exists() and not (tmp_path / "part.params").exists()
    factgpt(*args, "--writing_params_path", "part.params", "--resume", cwd=tmp_path)
    assert max_diff(tmp_path / "full.params", tmp_path / "part.params") == 0.0


def test_time_limit_stops_with_state_and_resume_finishes(tmp_path: Path):
    args = ["finetune", *TINY, "--max_epochs", "3", "--batch_size", "64", "--writing_params_path", "ft.params"]
    r = factgpt(*args, "--time_limit", "0.0001", cwd=tmp_path)
    assert "--resume" in r.stderr
    assert (tmp_path / "ft.params.state").exists() and not (tmp_path / "ft.params").exists()
    factgpt(*args, "--resume", cwd=tmp_path)
    factgpt("finetune", *TINY, "--max_epochs", "3", "--batch_size", "64", "--writing_params_path", "ref.params",
            cwd=tmp_path)
    assert max_diff(tmp_path / "ft.params", tmp_path / "ref.params") == 0.0


def test_resume_refuses_other_settings(tmp_path: Path):
    args = ["finetune", *TINY, "--max_epochs", "2", "--writing_params_path", "ft.params"]
    factgpt(*args, "--time_limit", "0.0001", cwd=tmp_path)
    r = factgpt(*args, "--resume", "--learning_rate", "0.1", cwd=tmp_path, check=False)
    assert r.returncode == 2 and "learning_rate" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_resume_without_state_is_a_clear_error(tmp_path: Path):
    r = factgpt("finetune", *TINY, "--writing_params_path", "none.params", "--resume", cwd=tmp_path, check=False)
    assert r.returncode == 2 and "none.params.state" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_two_process_ddp_matches_one_process(tmp_path: Path, command: str):
    # fp32 on every CPU: the comparison is of one process against two, not of precisions
    args = [command, *TINY, "--max_epochs", "1", "--dropout", "0", "--precision", "fp32"]
    if command == "finetune":
        args += ["--batch_size", "128"]
    factgpt(*args, "--writing_params_path", "one.params", cwd=tmp_path)
    # --standalone: the rendezvous takes a port the OS says is free
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "factgpt", *args,
                          "--writing_params_path", "ddp.params"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    # Only rank 0 writes, and reports once.
    assert run.stderr.count("wrote ddp.params") == 1
    assert max_diff(tmp_path / "one.params", tmp_path / "ddp.params") < 1e-4
