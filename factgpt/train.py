"""Training: the minGPT-derived trainer of the original code, quirks included.

The quirks are kept by default so that the course's numbers mean the same
thing here, and each can be switched off:
- weight decay on every parameter but biases (`decay_norms_and_embeddings`):
  the original meant to spare LayerNorm weights, but its name filter matched
  nothing, so LayerNorm weights and both embeddings are decayed too;
- the first step runs at the full learning rate (`first_step_full_lr`): the
  original set the scheduled rate only after each step;
- the cosine is not clamped at final_tokens: a run longer than final_tokens
  sees the rate come back up (the course pretraining reaches progress ≈ 3.2);
- batches walk the data in file order (`shuffle=False`).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from . import distributed as dist
from .allocator import keep_freed_memory
from .batches import Batch, pack
from .checkpoint import load_tensors, save_tensors
from .errors import InputError
from .fileio import write_text_atomic
from .model import GPT, GPTConfig
from .precision import autocast, matmul_precision, resolve


@dataclass
class TrainConfig:
    max_epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    grad_norm_clip: float = 1.0
    weight_decay: float = 0.1
    lr_decay: bool = True
    warmup_tokens: int = 512 * 20
    final_tokens: int = 260_000_000_000
    tokens_per_example: int = 127  # what the schedule counts per example: block_size − 1, pads included
    shuffle: bool = False
    decay_norms_and_embeddings: bool = True
    first_step_full_lr: bool = True
    pack: bool | None = None  # None: pack on a CPU; on CUDA, plain causal rows take the flash kernel
    precision: str = "auto"
    reference: bool = False  # the plain reference path: explicit attention and torch's dropout
    seed: int = 0

    def __post_init__(self) -> None:
        for k in ("max_epochs", "batch_size"):
            if int(getattr(self, k)) <= 0:
                raise InputError(f"--{k}", f"must be a positive integer, got {getattr(self, k)}")
        if not self.learning_rate > 0:
            raise InputError("--learning_rate", f"must be positive, got {self.learning_rate}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]


def lr_multiplier(tokens: int, cfg: TrainConfig) -> float:
    """Linear warm-up over warmup_tokens, then max(0.1, ½(1 + cos(π·progress))), unclamped progress."""
    if not cfg.lr_decay:
        return 1.0
    if tokens == 0 and cfg.first_step_full_lr:
        return 1.0
    if tokens < cfg.warmup_tokens:
        return tokens / max(1, cfg.warmup_tokens)
    progress = (tokens - cfg.warmup_tokens) / max(1, cfg.final_tokens - cfg.warmup_tokens)
    return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    groups = model.optimizer_groups(cfg.weight_decay, cfg.decay_norms_and_embeddings)
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=cfg.betas, fused=fused)


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class Progress:
    """Where a run is; saved with the training state so that a run can resume exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    epoch_gen_state: list[int] | None = None  # data generator at the start of the epoch
    epoch_src_state: Any = None  # a reference dataset's Python RNG at the start of the epoch
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Trains `model` on batches from `source` (anything with .epoch(batch_size, gen, shuffle))."""

    def __init__(self, model: GPT, source, cfg: TrainConfig, device: torch.device | str = "cpu",
                 compile: bool = False):
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if cfg.reference:
            self.model.use_reference_kernels(True)
        if self.device.type == "cpu" and not self.model.config.reference:
            keep_freed_memory()  # page faults cost a CPU step about a tenth of its time (allocator.py)
        self.source = source
        self.precision = resolve(cfg.precision, self.device, training=True)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.progress = Progress()
        torch.manual_seed(cfg.seed)  # dropout
        self.pack = cfg.pack if cfg.pack is not None else self.device.type == "cpu"
        self.lazy = self.device.type == "cuda"  # avoid a host sync every step
        self.sync_every = 50
        self._pending: list = []
        self._interrupted = False  # set by a Ctrl-C during train()
        self.world, self.rank = dist.world_size(), dist.rank()
        if self.world > 1:
            torch.manual_seed(cfg.seed + self.rank)  # dropout differs per rank, data does not
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = DDP(self.model, device_ids=ids)
        else:
            self.forward = self.model
        if compile:
            self.forward = torch.compile(self.forward)
        self.steps_per_epoch = math.ceil(len(source) / cfg.batch_size)

    @property
    def total_steps(self) -> int:
        return self.cfg.max_epochs * self.steps_per_epoch

    # ---- one step -------------------------------------------------------------
    def step(self, batch: Batch) -> float:
        cfg, p = self.cfg, self.progress
        lr = cfg.learning_rate * lr_multiplier(p.tokens, cfg)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        n_examples = batch.n_examples
        if self.world > 1:  # this rank's slice of the global batch
            sl = slice(self.rank, None, self.world)
            ro = None if batch.read_only is None else batch.read_only[sl]
            batch = Batch(batch.x[sl], batch.y[sl], len(batch.x[sl]), read_only=ro)
        if self.pack:
            batch = pack(batch)
        b = batch.to(self.device)
        self.model.train()
        with autocast(self.precision, self.device):
            _, loss_sum = self.forward(b.x, b.y, b.layout, reduction="sum")
        count = (b.y != 0).sum().to(torch.float32)
        if self.world > 1:
            stats = dist.all_reduce_sum(torch.stack([count, loss_sum.detach().float()]))
            total, value = float(stats[0]), float(stats[1] / stats[0])
            loss = loss_sum * (self.world / total)  # DDP averages gradients over ranks
        else:
            loss = loss_sum / count
            value = None if self.lazy else float(loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        with matmul_precision(self.precision, self.device):  # the backward products in the forward's arithmetic
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_norm_clip)
        entry = {"step": p.step + 1, "epoch": p.epoch + 1, "lr": lr}
        if value is None:  # on CUDA: no host sync per step; losses are read in groups
            self._pending.append((entry, loss.detach(), count))
        else:
            self._check(value, entry)
            p.history.append({**entry, "loss": value, "real_tokens": int(count)})
        self.optimizer.step()
        p.tokens += n_examples * cfg.tokens_per_example
        p.step += 1
        if len(self._pending) >= self.sync_every:
            self.flush()
        return p.history[-1]["loss"] if p.history else float("nan")

    def _check(self, value: float, entry: dict) -> None:
        if not math.isfinite(value):
            self._pending.clear()
            raise NonFiniteLoss(f"loss became {value} at step {entry['step']} (epoch {entry['epoch']}); "
                                "the last saved checkpoint is untouched; try a lower learning rate or --precision fp32")

    def flush(self) -> None:
        """Read the pending losses (one host sync), check them, and add them to the history."""
        if not self._pending:
            return
        losses = torch.stack([t for _, t, _ in self._pending]).float().tolist()
        counts = torch.stack([c for _, _, c in self._pending]).tolist()
        pending, self._pending = self._pending, []
        for (entry, _, _), value, n in zip(pending, losses, counts):
            self._check(value, entry)
            self.progress.history.append({**entry, "loss": value, "real_tokens": int(n)})

    # ---- the loop ---------------------------------------------------------------
    @contextlib.contextmanager
    def _ctrl_c_between_steps(self):
        """A first Ctrl-C lets the step in flight finish, so that the state saved is a step's end
        (resumable bit for bit); a second one stops at once. Only the main thread gets signals."""
        self._interrupted = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum, frame):
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def train(
        self,
        progress_bar: bool = True,
        desc: str = "train",
        time_limit_s: float | None = None,
        state_path: str | Path | None = None,
        save_every: int | None = None,
        on_epoch_end: Callable[["Trainer"], None] | None = None,
    ) -> str:
        """Run to max_epochs; returns "done", or "stopped" when time_limit_s ran out (state saved).
        Ctrl-C saves the state at the end of the step in flight, then raises KeyboardInterrupt."""
        p = self.progress
        start = time.time() - p.elapsed
        bar = tqdm(total=self.total_steps, initial=p.step, desc=desc, disable=not progress_bar or self.rank != 0,
                   unit="step", dynamic_ncols=True, leave=True)
        with self._ctrl_c_between_steps():
            return self._loop(bar, start, time_limit_s, state_path, save_every, on_epoch_end)

    def _loop(self, bar, start: float, time_limit_s: float | None, state_path: str | Path | None,
              save_every: int | None, on_epoch_end) -> str:
        cfg, p = self.cfg, self.progress
        try:
            while p.epoch < cfg.max_epochs:
                if p.batch_in_epoch == 0:
                    p.epoch_gen_state = self.gen.get_state().tolist()
                    p.epoch_src_state = getattr(self.source, "rng_state", lambda: None)()
                else:  # resuming mid-epoch: replay the epoch's draws up to where we were
                    self.gen.set_state(torch.tensor(p.epoch_gen_state, dtype=torch.uint8))
                    getattr(self.source, "set_rng_state", lambda s: None)(p.epoch_src_state)
                batches = self.source.epoch(cfg.batch_size, self.gen, cfg.shuffle)
                for i, batch in enumerate(batches):
                    if i < p.batch_in_epoch:
                        continue
                    self.step(batch)
                    p.batch_in_epoch = i + 1
                    p.elapsed = time.time() - start
                    bar.update(1)
                    if p.history:
                        bar.set_postfix(epoch=f"{p.epoch + 1}/{cfg.max_epochs}", loss=f"{p.history[-1]['loss']:.4f}",
                                        lr=f"{p.history[-1]['lr']:.2e}", refresh=False)
                    if state_path and save_every and p.step % save_every == 0:
                        self.save_state(state_path)
                    if self._interrupted:
                        if state_path:
                            self.save_state(state_path)
                        raise KeyboardInterrupt
                    if time_limit_s is not None and self._out_of_time(p.elapsed, time_limit_s):
                        if state_path:
                            self.save_state(state_path)
                        return "stopped"
                self.flush()
                p.epoch += 1
                p.batch_in_epoch = 0
                if on_epoch_end is not None:
                    on_epoch_end(self)
        finally:
            bar.close()
        p.elapsed = time.time() - start
        if state_path:
            self.save_state(state_path)
        return "done"

    def _out_of_time(self, elapsed: float, limit: float) -> bool:
        """All ranks stop at the same step: rank 0's clock decides."""
        flag = torch.tensor([1.0 if (elapsed >= limit and self.rank == 0) else 0.0], device=self.device)
        return bool(dist.all_reduce_sum(flag)[0] > 0)

    # ---- resumable state --------------------------------------------------------
    def save_state(self, path: str | Path) -> None:
        self.flush()  # a non-finite loss raises here, before anything is written
        if self.rank != 0:
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt = self.optimizer.state_dict()
        for idx, st in opt["state"].items():
            for name, t in st.items():
                tensors[f"opt.{idx}.{name}"] = t if torch.is_tensor(t) else torch.tensor(t)
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.gen"] = self.gen.get_state()
        meta = {
            "format": "factgpt-train-state-1",
            "train_config": asdict(self.cfg),
            "model_config": self.model.config.to_dict(),
            "param_groups": [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                             for g in opt["param_groups"]],
            "progress": asdict(self.progress),
        }
        save_tensors(path, tensors, meta)

    def load_state(self, path: str | Path) -> None:
        tensors, meta = load_tensors(path)
        if meta.get("format") != "factgpt-train-state-1":
            raise InputError(path, "not a factgpt training-state file")
        if meta["model_config"] != self.model.config.to_dict():
            raise InputError(path, "training state is of another model (size, variant or vocabulary)")
        saved_cfg = meta["train_config"]
        for k in ("batch_size", "learning_rate", "seed", "pack", "shuffle", "warmup_tokens", "final_tokens"):
            if saved_cfg.get(k) != asdict(self.cfg).get(k):
                raise InputError(path, f"cannot resume with a different {k} ({saved_cfg.get(k)} saved, {asdict(self.cfg).get(k)} now)")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.gen.set_state(tensors["rng.gen"])
        self.progress = Progress(**meta["progress"])


def model_from_state(path: str | Path) -> tuple[GPT, dict[str, Any]]:
    """The model of a training state (`<checkpoint>.state`) and the state's metadata.

    A run stopped on time leaves only its state; this reads the weights out of it
    without an optimizer, e.g. to finetune what a stopped pretraining had stored.
    """
    tensors, meta = load_tensors(path)
    if meta.get("format") != "factgpt-train-state-1":
        raise InputError(path, "not a factgpt training-state file")
    try:
        model = GPT(GPTConfig(**meta["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(path, f"bad model config in the training state: {e}") from None
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if set(weights) != set(model.state_dict()):
        raise InputError(path, "the training state's tensors do not match its model config")
    model.load_state_dict(weights)
    return model, meta


# A loss history keeps at most this many points: a course pretraining has about 15,000 steps,
# and a figure needs a few thousand; the file stays small enough to commit.
HISTORY_POINTS = 2000


def thin_history(history: list[dict], points: int = HISTORY_POINTS) -> tuple[list[dict], int]:
    """(history, steps a point): consecutive steps averaged in windows of k so that at most
    `points` remain; each point is its window's last step, epoch and lr, its mean loss and its
    summed real tokens."""
    k = max(1, math.ceil(len(history) / points))
    if k == 1:
        return list(history), 1
    out = []
    for i in range(0, len(history), k):
        w = history[i:i + k]
        out.append({**w[-1], "loss": sum(h["loss"] for h in w) / len(w),
                    **({"real_tokens": sum(h["real_tokens"] for h in w)} if "real_tokens" in w[-1] else {})})
    return out, k


def write_history(path: str | Path, trainer: Trainer, extra: dict | None = None) -> None:
    history, k = thin_history(trainer.progress.history)
    body = {"train_config": asdict(trainer.cfg), "precision": trainer.precision,
            "seconds": trainer.progress.elapsed,  # the training's own time, over every piece of a resumed run
            "final_loss": trainer.progress.history[-1]["loss"] if trainer.progress.history else None,
            "steps_per_point": k, "history": history, **(extra or {})}
    write_text_atomic(path, json.dumps(body) + "\n")
