"""Checkpoints: round trip, refusals with one clear message, import of torch.save files, atomic writes."""

from __future__ import annotations

import os
import random

import pytest
import torch

from factgpt.checkpoint import FORMAT, convert_torch_checkpoint, load_model, load_tensors, save_model
from factgpt.errors import InputError
from factgpt.fileio import atomic_write, write_text_atomic
from factgpt.vocab import Vocab

pytestmark = pytest.mark.usefixtures("single_thread")


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def saved(make_model, vocab, tmp_path_factory):
    model = make_model("vanilla", seed=11)
    with torch.no_grad():  # weights that differ from any fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path_factory.mktemp("ck") / "model.safetensors"
    save_model(path, model, vocab, {"stage": "pretrain", "steps": 17})
    return model, path


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_round_trip(make_model, vocab, tmp_path, variant):
    model = make_model(variant, seed=3, synth_per_head_b=variant == "synthesizer")
    path = tmp_path / "m.safetensors"
    save_model(path, model, vocab, {"stage": "finetune", "note": "caf\u00e9"})
    loaded, meta = load_model(path, vocab=vocab, variant=variant, config={"n_layer": 2, "n_embd": 64})
    assert_same_weights(model, loaded)
    assert loaded.config == model.config
    assert meta["format"] == FORMAT and meta["variant"] == variant
    assert meta["config"] == model.config.to_dict()
    assert meta["vocab"] == "".join(vocab.chars)
    assert meta["stage"] == "finetune" and meta["note"] == "caf\u00e9"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left behind
    x = torch.randint(2, len(vocab), (2, 20))
    torch.testing.assert_close(model.eval()(x)[0], loaded.eval()(x)[0], atol=0, rtol=0)


def test_wrong_variant(saved):
    _, path = saved
    with pytest.raises(InputError) as ei:
        load_model(path, variant="synthesizer")
    assert str(path) in str(ei.value) and "variant" in str(ei.value)


def test_wrong_vocabulary(saved):
    _, path = saved
    other = Vocab.from_corpus("a small corpus\nwith other characters\n")
    with pytest.raises(InputError) as ei:
        load_model(path, vocab=other)
    assert str(path) in str(ei.value) and "vocabulary" in str(ei.value)


@pytest.mark.parametrize("key, value", [("n_layer", 4), ("n_embd", 256), ("n_head", 8), ("block_size", 64)])
def test_wrong_model_size(saved, key, value):
    _, path = saved
    with pytest.raises(InputError) as ei:
        load_model(path, config={key: value})
    assert str(ei.value).startswith(f"{path}: ") and key in str(ei.value)


def test_truncated_and_random_files(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    cases = {
        "half.safetensors": data[: len(data) // 2],
        "header_only.safetensors": data[:40],
        "last_byte_missing.safetensors": data[:-1],
        "random.safetensors": random.Random(0).randbytes(4096),
        "pickle_like.safetensors": b"\x80\x02" + random.Random(1).randbytes(600),
        "empty.safetensors": b"",
    }
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(InputError) as ei:
            load_model(p)
        assert str(ei.value).startswith(f"{p}: "), name
    with pytest.raises(InputError) as ei:
        load_model(tmp_path / "missing.safetensors")
    assert "missing.safetensors" in str(ei.value)


def test_safetensors_without_our_metadata(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(p))
    with pytest.raises(InputError, match="metadata"):
        load_tensors(p)


def test_non_finite_weights_are_refused(make_model, vocab, tmp_path):
    model = make_model()
    with torch.no_grad():
        model.head.weight[3, 3] = float("inf")
    p = tmp_path / "inf.safetensors"
    save_model(p, model, vocab)
    with pytest.raises(InputError, match="NaN or infinite"):
        load_model(p)


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_convert_torch_checkpoint(make_model, vocab, tmp_path, variant):
    model = make_model(variant, seed=8)
    src = tmp_path / f"{variant}.params"
    sd = model.state_dict()
    if variant == "synthesizer":  # a DataParallel-style prefix is stripped
        sd = {f"module.{k}": v for k, v in sd.items()}
    torch.save(sd, src)
    dst = tmp_path / f"{variant}.safetensors"
    cfg = convert_torch_checkpoint(src, dst, vocab, variant, {"n_head": 4})
    assert (cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["block_size"], cfg["vocab_size"]) == (2, 4, 64, 128, len(vocab))
    loaded, meta = load_model(dst, vocab=vocab, variant=variant)
    assert_same_weights(model, loaded)
    assert meta["converted_from"] == str(src)


def test_convert_refuses_pickled_code_and_bad_files(vocab, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    src = tmp_path / "evil.params"
    torch.save({"x": Evil()}, src)
    with pytest.raises(InputError):
        convert_torch_checkpoint(src, tmp_path / "out.safetensors", vocab, "vanilla")
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out.safetensors").exists()
    torch.save({"foo": torch.zeros(2)}, tmp_path / "other.params")
    with pytest.raises(InputError, match="not a checkpoint of this model"):
        convert_torch_checkpoint(tmp_path / "other.params", tmp_path / "out.safetensors", vocab, "vanilla")
    with pytest.raises(InputError, match="no such file"):
        convert_torch_checkpoint(tmp_path / "nope.params", tmp_path / "out.safetensors", vocab, "vanilla")


# ---- atomic writes -----------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old content\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(p) as f:
            f.write("new content, half written")
            f.flush()
            raise RuntimeError("boom")
    assert p.read_text() == "old content\n"
    assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]
    # binary mode, KeyboardInterrupt too
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(p, "wb") as f:
            f.write(b"\x00" * 1000)
            raise KeyboardInterrupt
    assert p.read_text() == "old content\n"
    assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_replaces_on_success(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    write_text_atomic(p, "new \u2047 text\n")
    assert p.read_text(encoding="utf-8") == "new \u2047 text\n"
    assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]
    assert os.stat(p).st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(InputError):
        write_text_atomic(tmp_path / "no" / "such" / "dir.txt", "x")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_save_model_failure_keeps_previous_checkpoint(saved, make_model, vocab, monkeypatch):
    model, path = saved
    before = path.read_bytes()
    import factgpt.fileio as fileio

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "fsync", broken_fsync)  # fails after the new bytes are written
    with pytest.raises(OSError, match="disk full"):
        save_model(path, make_model(seed=99), vocab)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [q.name for q in path.parent.iterdir()] == [path.name]
    loaded, _ = load_model(path, vocab=vocab)
    assert_same_weights(model, loaded)


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_convert_a_state_dict_of_the_original_code(make_model, vocab, tmp_path, variant):
    model = make_model(variant, seed=9)
    sd = dict(model.state_dict())
    for i in range(model.config.n_layer):  # what the original CausalSelfAttention/SynthesizerAttention save
        sd[f"blocks.{i}.attn.mask"] = torch.ones(128, 128).tril().view(1, 1, 128, 128)
    src = tmp_path / "original.params"
    torch.save(sd, src)
    convert_torch_checkpoint(src, tmp_path / "out.safetensors", vocab, variant, {"n_head": 4})
    loaded, _ = load_model(tmp_path / "out.safetensors", vocab=vocab, variant=variant)
    assert_same_weights(model, loaded)
