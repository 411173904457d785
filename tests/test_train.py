"""The trainer: learning-rate schedule, weight-decay groups, learning, paths, and failure."""

from __future__ import annotations

import copy
import math
import sys
import subprocess
import platform

import pytest
import torch
import torch.nn as nn

from factgpt.batches import DatasetSource, TensorExamples
from factgpt.datasets import NameDataset
from factgpt.evaluate import predict
from factgpt.pipeline import load_profile, stage_config
from factgpt.errors import InputError
from factgpt.train import NonFiniteLoss, Trainer, TrainConfig, lr_multiplier, make_optimizer, model_from_state

pytestmark = pytest.mark.usefixtures("single_thread")


# ---- the learning-rate schedule ---------------------------------------------------------------
def test_warmup():
    cfg = TrainConfig(warmup_tokens=1000, final_tokens=100_000)
    assert lr_multiplier(0, cfg) == 1.0  # the original's first step at the full rate
    assert lr_multiplier(0, TrainConfig(warmup_tokens=1000, final_tokens=100_000, first_step_full_lr=False)) == 0.0
    for t in (1, 127, 500, 999):
        assert lr_multiplier(t, cfg) == pytest.approx(t / 1000)
        assert lr_multiplier(t, TrainConfig(warmup_tokens=1000, final_tokens=100_000,
                                            first_step_full_lr=False)) == pytest.approx(t / 1000)
    assert lr_multiplier(1000, cfg) == pytest.approx(1.0)
    assert lr_multiplier(12345, TrainConfig(lr_decay=False)) == 1.0


def test_cosine_floor_and_unclamped_progress():
    cfg = TrainConfig(warmup_tokens=1000, final_tokens=101_000)
    mid = 1000 + 50_000
    assert lr_multiplier(mid, cfg) == pytest.approx(0.5)
    assert lr_multiplier(1000 + 25_000, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(101_000, cfg) == pytest.approx(0.1)  # cos(π) = -1 → 0, floored at 0.1
    assert lr_multiplier(90_000, cfg) == pytest.approx(0.1)
    # past final_tokens the rate climbs back (progress is not clamped)
    assert lr_multiplier(1000 + 150_000, cfg) == pytest.approx(0.5)
    assert lr_multiplier(1000 + 200_000, cfg) == pytest.approx(1.0)


def _course_tokens(steps: int) -> list[int]:
    """Tokens counted before each step of the course pretraining: 2,937 lines, batch 128, 127 tokens each."""
    per_epoch = [128] * 22 + [2937 - 22 * 128]
    tokens = [0]
    while len(tokens) <= steps:
        for n in per_epoch:
            tokens.append(tokens[-1] + n * 127)
    return tokens


def test_course_schedule():
    prof = load_profile("course")
    cfg = stage_config(prof, "pretrain", 2937)
    assert cfg.warmup_tokens == 10240 and cfg.final_tokens == 200 * 2937 * 128
    assert cfg.batch_size == 128 and cfg.tokens_per_example == 127 and cfg.max_epochs == 650
    assert math.ceil(2937 / cfg.batch_size) == 23
    tokens = _course_tokens(650 * 23)

    def mult(step: int) -> float:  # step 1 is the first optimizer step
        return lr_multiplier(tokens[step - 1], cfg)

    assert mult(1) == 1.0
    # one step counts 128 × 127 = 16,256 tokens > 10,240: warm-up is over after the first step
    assert 0.999 < mult(2) < 1.0
    assert 0.99 < mult(23) <= 1.0
    # falls to the floor: reached at about step 3,700, still there near step 4,600 (progress 1)
    assert mult(3000) > 0.2
    assert mult(3600) > 0.1
    assert mult(4600) == pytest.approx(0.1)
    assert mult(4636) == pytest.approx(0.1)
    floor = [s for s in range(1, 9000) if mult(s) == 0.1]
    assert 3600 < floor[0] < 3800 and 5500 < floor[-1] < 5700
    # ... and comes back to the peak near step 9,200 (progress 2)
    assert mult(7000) == pytest.approx(0.515, abs=0.01)
    assert mult(9200) == pytest.approx(1.0, abs=0.002)
    assert max(range(8000, 11000), key=mult) in range(9200, 9350)
    # the course's last step sits at progress ≈ 3.2
    progress = (tokens[650 * 23 - 1] - cfg.warmup_tokens) / (cfg.final_tokens - cfg.warmup_tokens)
    assert progress == pytest.approx(3.22, abs=0.01)


def test_trainer_uses_the_schedule(make_model, vocab, train_tsv_text):
    ds = NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:64]), 128)
    for full in (True, False):
        cfg = TrainConfig(max_epochs=1, batch_size=16, learning_rate=1e-3, warmup_tokens=64 * 127,
                          first_step_full_lr=full, precision="fp32")
        tr = Trainer(make_model(), TensorExamples(ds), cfg)
        tr.train(progress_bar=False)
        lrs = [h["lr"] for h in tr.progress.history]
        assert lrs == pytest.approx([1e-3 if full else 0.0, 0.25e-3, 0.5e-3, 0.75e-3])
        assert tr.progress.tokens == 64 * 127 and tr.progress.step == 4


# ---- weight decay --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_weight_decay_groups(make_model, variant):
    model = make_model(variant)
    names = {id(p): n for n, p in model.named_parameters()}

    def groups(flag: bool):
        opt = make_optimizer(model, TrainConfig(decay_norms_and_embeddings=flag, weight_decay=0.1), torch.device("cpu"))
        decay, no_decay = opt.param_groups
        assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
        d = {names[id(p)] for p in decay["params"]}
        nd = {names[id(p)] for p in no_decay["params"]}
        assert not d & nd and d | nd == set(names.values())
        return d, nd

    # the original's effective rule: everything but biases is decayed
    d, nd = groups(True)
    assert nd == {n for n in names.values() if n.endswith("bias")}
    assert {"tok_emb.weight", "pos_emb", "ln_f.weight", "blocks.0.ln1.weight", "blocks.1.ln2.weight"} <= d
    if variant == "synthesizer":
        assert {"blocks.0.attn.w2", "blocks.0.attn.b2"} <= d
    # the fix: matrix-product weights only
    d, nd = groups(False)
    matmul = {f"{mn}.weight" for mn, m in model.named_modules() if isinstance(m, nn.Linear)}
    if variant == "synthesizer":
        matmul |= {n for n in names.values() if n.endswith(".w2")}
    assert d == matmul
    assert {"tok_emb.weight", "pos_emb", "ln_f.weight", "blocks.0.ln1.weight"} <= nd


# ---- learning ------------------------------------------------------------------------------------------
def test_tiny_model_memorizes_twenty_facts(make_model, vocab, train_tsv_text):
    ds = NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:20]), 128)
    model = make_model("vanilla", seed=0, dropout=0.0)
    cfg = TrainConfig(max_epochs=1, batch_size=20, learning_rate=3e-3, warmup_tokens=0, lr_decay=False,
                      precision="fp32")
    tr = Trainer(model, TensorExamples(ds), cfg)
    questions = [r.question for r in ds.rows]
    correct = 0
    for chunk in range(1, 17):  # at most 400 epochs of one step each
        tr.cfg.max_epochs = 25 * chunk
        tr.train(progress_bar=False)
        preds = predict(model, vocab, questions)
        correct = sum(p.text == r.answer for p, r in zip(preds, ds.rows))
        if correct == len(ds):
            break
    assert correct == 20, f"{correct}/20 after {tr.progress.step} steps"
    assert tr.progress.history[-1]["loss"] < 0.1


def test_reference_path_and_fast_path_give_the_same_losses(make_model, vocab, train_tsv_text):
    ds = NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:160]), 128)
    model = make_model("vanilla", seed=5, dropout=0.0)
    common = dict(max_epochs=1, batch_size=32, learning_rate=6e-4, warmup_tokens=512 * 20, precision="fp32", seed=3)
    ref = Trainer(copy.deepcopy(model), DatasetSource(ds),
                  TrainConfig(pack=False, reference=True, **common))
    fast = Trainer(copy.deepcopy(model), TensorExamples(ds), TrainConfig(pack=True, **common))
    ref.train(progress_bar=False)
    fast.train(progress_bar=False)
    a = [h["loss"] for h in ref.progress.history]
    b = [h["loss"] for h in fast.progress.history]
    assert len(a) == len(b) == 5
    assert a == pytest.approx(b, abs=1e-4)
    assert a[-1] < a[0]
    assert [h["real_tokens"] for h in ref.progress.history] == [h["real_tokens"] for h in fast.progress.history]
    assert ref.progress.tokens == fast.progress.tokens == 160 * 127
    for (n, p), q in zip(ref.model.named_parameters(), fast.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-3, msg=n)


# ---- the model inside a training state ----------------------------------------------------------------------
def test_model_from_state_is_the_trained_model(make_model, vocab, train_tsv_text, tmp_path):
    ds = NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:48]), 128)
    tr = Trainer(make_model(), TensorExamples(ds), TrainConfig(max_epochs=1, batch_size=16, precision="fp32"))
    tr.train(progress_bar=False, state_path=tmp_path / "m.state", save_every=1)
    model, meta = model_from_state(tmp_path / "m.state")
    assert meta["progress"]["step"] == tr.progress.step == 3
    assert model.config == tr.model.config
    for k, v in tr.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    (tmp_path / "other.state").write_bytes((tmp_path / "m.state").read_bytes()[:100])
    with pytest.raises(InputError, match="other.state"):
        model_from_state(tmp_path / "other.state")


# ---- non-finite loss -------------------------------------------------------------------------------------
def test_nan_loss_raises_and_leaves_the_state_file_alone(make_model, vocab, train_tsv_text, tmp_path):
    ds = NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:64]), 128)
    cfg = TrainConfig(max_epochs=2, batch_size=16, precision="fp32")
    state = tmp_path / "model.state"

    # NaN from the first step: no state file is written at all
    model = make_model()
    with torch.no_grad():
        model.tok_emb.weight[5:50] = float("nan")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tr = Trainer(model, TensorExamples(ds), cfg)
    with pytest.raises(NonFiniteLoss, match="nan"):
        tr.train(progress_bar=False, state_path=state, save_every=1)
    assert not state.exists()
    assert list(tmp_path.iterdir()) == []
    assert tr.progress.step == 0
    for n, p in model.named_parameters():  # no optimizer step was taken
        torch.testing.assert_close(p, before[n], equal_nan=True, atol=0, rtol=0)

    # NaN in the middle of a run: the last saved state is untouched
    model = make_model()
    tr = Trainer(model, TensorExamples(ds), TrainConfig(max_epochs=1, batch_size=16, precision="fp32"))
    tr.train(progress_bar=False, state_path=state, save_every=1)
    saved = state.read_bytes()
    tr.cfg.max_epochs = 2
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteLoss):
        tr.train(progress_bar=False, state_path=state, save_every=1)
    assert state.read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.state"]


def test_train_config_refuses_bad_numbers():
    from factgpt.errors import InputError

    for kw in ({"max_epochs": 0}, {"batch_size": -1}, {"learning_rate": 0.0}):
        with pytest.raises(InputError):
            TrainConfig(**kw)


GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# keep_freed_memory changes the allocator of the whole process: it runs in a child
# process, so that the tests after it see the allocator they would see alone.
_FREED_BLOCK_CHECK = """
import ctypes, resource
from factgpt.allocator import keep_freed_memory
first = keep_freed_memory()
assert keep_freed_memory() == first  # idempotent
assert first is True
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
size = 64 << 20  # above glibc's largest default mmap threshold (32 MB): mmapped, and unmapped on free, by default

def faults_of_one_use():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_one_use()
assert faults_of_one_use() < (size >> 12) // 10, "the freed block was returned to the system"  # else every 4 KB page faults again
"""


@pytest.mark.skipif(not GLIBC, reason="keep_freed_memory tunes glibc's allocator")
def test_keep_freed_memory_lets_a_freed_large_block_be_reused_without_page_faults():
    run = subprocess.run([sys.executable, "-c", _FREED_BLOCK_CHECK], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.skipif(GLIBC, reason="on glibc the allocator is tuned (the test above)")
def test_keep_freed_memory_does_nothing_without_glibc():
    run = subprocess.run([sys.executable, "-c", "from factgpt.allocator import keep_freed_memory as k; "
                          "assert k() is False"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr



def test_a_long_history_is_thinned_to_window_means_that_keep_the_last_step():
    from factgpt.train import thin_history

    hist = [{"step": i + 1, "epoch": i // 7 + 1, "lr": 1.0 / (i + 1), "loss": float(i % 5), "real_tokens": 3}
            for i in range(4999)]
    thin, k = thin_history(hist, points=1000)
    assert k == 5 and len(thin) == 1000 and thin[-1]["step"] == 4999 and thin[-1]["lr"] == hist[-1]["lr"]
    assert thin[0] == {**hist[4], "loss": 2.0, "real_tokens": 15}
    assert sum(t["real_tokens"] for t in thin) == 3 * 4999
    short, k = thin_history(hist[:10], points=1000)
    assert k == 1 and short == hist[:10]


@pytest.mark.slow
def test_the_compiled_step_trains_as_the_plain_one(vocab, wiki_text):
    """`--compile` (torch.compile of the step's forward) gives the plain step's losses; about a
    minute and a half of compiling on 2 CPU cores, for four steps."""
    from factgpt.batches import BatchedCorruption
    from factgpt.model import GPT, GPTConfig
    from factgpt.train import Trainer, TrainConfig

    text = "\n".join(wiki_text.split("\n")[:256]) + "\n"
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig(len(vocab), n_layer=1, n_head=2, n_embd=32))
        tr = Trainer(model, BatchedCorruption(text, vocab, 128), TrainConfig(max_epochs=1, batch_size=64,
                                                                            learning_rate=1e-3),
                     torch.device("cpu"), compile=compiled)
        tr.train(progress_bar=False)
        losses[compiled] = [h["loss"] for h in tr.progress.history]
    assert len(losses[True]) == 4
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
