"""Checkpoints: safetensors weights with JSON metadata in the same file.

The metadata (format version, model config, variant, vocabulary and anything
the trainer adds) lives in the safetensors header, so a checkpoint is one
file that is written atomically and can be read without executing anything.
The optimizer/scheduler/RNG state for resuming goes to a second file beside it
(`<path>.state`), also safetensors plus JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from .errors import InputError
from .fileio import atomic_write
from .model import GPT, GPTConfig
from .vocab import Vocab

FORMAT = "factgpt-checkpoint-1"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = st_save(data, metadata={"factgpt": json.dumps(meta, ensure_ascii=False)})
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such checkpoint file")
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        hint = " (a torch.save file? convert it with `factgpt convert`)" if _looks_like_pickle(p) else ""
        raise InputError(p, f"not a readable safetensors checkpoint: {str(e).splitlines()[0]}{hint}") from None
    if "factgpt" not in header:
        raise InputError(p, "safetensors file without factgpt metadata")
    try:
        meta = json.loads(header["factgpt"])
    except json.JSONDecodeError:
        raise InputError(p, "corrupted factgpt metadata in the checkpoint header") from None
    return tensors, meta


def _looks_like_pickle(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(4)
    return head[:2] == b"PK" or head[:1] == b"\x80"


def save_model(path: str | Path, model: GPT, vocab: Vocab, extra: dict[str, Any] | None = None) -> None:
    meta = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "variant": model.config.variant,
        "vocab": "".join(vocab.chars),
        **(extra or {}),
    }
    save_tensors(path, model.state_dict(), meta)


def load_model(
    path: str | Path,
    vocab: Vocab | None = None,
    variant: str | None = None,
    config: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[GPT, dict[str, Any]]:
    """Load a checkpoint, refusing it with one clear line if it does not match.

    vocab/variant/config: what the caller expects (the corpus's vocabulary, the
    variant named on the command line, the model size it is about to train).
    """
    tensors, meta = load_tensors(path)
    if meta.get("format") != FORMAT:
        raise InputError(path, f"unknown checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    if variant is not None and meta.get("variant") != variant:
        raise InputError(path, f"checkpoint is of the {meta.get('variant')!r} variant, not {variant!r}")
    if vocab is not None and meta.get("vocab") != "".join(vocab.chars):
        raise InputError(path, "checkpoint was trained with another vocabulary (another pretraining corpus)")
    try:
        cfg = GPTConfig(**meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(path, f"bad model config in checkpoint: {e}") from None
    if config is not None:
        for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            if k in config and config[k] != getattr(cfg, k):
                raise InputError(path, f"checkpoint has {k}={getattr(cfg, k)}, expected {config[k]}")
    model = GPT(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise InputError(path, f"checkpoint tensors do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, t in tensors.items():
        if t.shape != expected[k].shape:
            raise InputError(path, f"tensor {k} has shape {tuple(t.shape)}, expected {tuple(expected[k].shape)}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise InputError(path, f"tensor {k} holds NaN or infinite values")
    model.load_state_dict(tensors)
    return model.to(device), meta


def convert_torch_checkpoint(src: str | Path, dst: str | Path, vocab: Vocab, variant: str,
                             cfg_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import an old `torch.save` state dict without unpickling code (weights_only=True)."""
    try:
        sd = torch.load(src, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(src, "no such file") from None
    except Exception as e:  # any unpickling refusal or corruption
        raise InputError(src, f"cannot read as a weights-only torch checkpoint: {str(e).splitlines()[0]}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise InputError(src, "not a state dict of tensors")
    # "module." from DataParallel wrappers; the original attention layers also saved
    # their causal mask as a buffer, which this model builds on the fly.
    sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.endswith(".attn.mask")}
    n_layer = 1 + max((int(k.split(".")[1]) for k in sd if k.startswith("blocks.")), default=-1)
    try:
        vocab_size, n_embd = sd["tok_emb.weight"].shape
        block_size = sd["pos_emb"].shape[1]
    except KeyError as e:
        raise InputError(src, f"not a checkpoint of this model: no tensor {e}") from None
    guess = dict(vocab_size=vocab_size, n_embd=n_embd, block_size=block_size, n_layer=n_layer, variant=variant)
    if vocab_size != len(vocab):
        raise InputError(src, f"checkpoint has {vocab_size} tokens, the corpus's vocabulary has {len(vocab)}")
    cfg = GPTConfig(**{**guess, **(cfg_overrides or {})})
    model = GPT(cfg)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise InputError(src, f"does not fit a {variant} model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, t in sd.items():
        if t.shape != expected[k].shape:
            raise InputError(src, f"does not fit a {variant} model: {k} has shape {tuple(t.shape)}, "
                                  f"expected {tuple(expected[k].shape)}")
    model.load_state_dict(sd)
    save_model(dst, model, vocab, {"converted_from": str(src)})
    return cfg.to_dict()
