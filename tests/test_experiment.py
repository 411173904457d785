"""The experiment layer (experiment.py): one data bundle, one finetuning on the slice, one score, one record."""

import dataclasses
import json

import pytest
import torch

from factgpt.config import StageSettings, load
from factgpt.experiment import FORMATS, DataBundle, Score, finetune_on, provenance
from factgpt.heldout import name_of
from factgpt.people import line_name
from factgpt.datasets import documents
from factgpt.train import TrainConfig


@pytest.fixture(scope="module")
def data() -> DataBundle:
    return DataBundle.load(128)


def test_the_bundle_splits_the_training_pairs_into_a_slice_and_the_rest_and_keeps_dev_out(data):
    assert len(data.heldout) == 300 and len(data.dev) == 500 and len(data.test) > 0
    assert len(data.finetune) + len(data.heldout) == len(data.train)
    held = {r.question for r in data.heldout}
    assert not held & {r.question for r in data.finetune}
    assert not held & {r.question for r in data.dev}
    people = {line_name(d) for d in documents(data.corpus.text)}
    assert all(name_of(q) in people for q in held)  # a held-out fact is in the pretraining corpus
    assert all(r.answer is None for r in data.test) and all(r.answer for r in data.dev)


def test_the_bundle_is_loaded_once_per_block_size(data):
    assert DataBundle.load(128) is data
    assert DataBundle.load(64).block_size == 64


def test_finetuning_on_the_slice_never_sees_a_held_out_question(data):
    seen = data.finetune_examples()
    assert len(seen) == len(data.finetune)
    vocab = data.vocab
    held = {r.question for r in data.heldout}
    texts = {vocab.decode([int(t) for t in row if int(t) != vocab.pad_id]).split("\u2047")[0] for row in seen.x}
    assert texts == {r.question for r in data.finetune} and not texts & held


def test_finetune_on_uses_the_profiles_finetuning_and_its_overrides(data, make_model):
    prof = load("profiles", "smoke")
    model = make_model("vanilla", seed=0)
    tr = finetune_on(model, data, prof, seed=3, device=torch.device("cpu"), max_epochs=1, batch_size=512)
    assert tr.cfg.seed == 3 and tr.cfg.max_epochs == 1 and tr.cfg.batch_size == 512
    assert tr.cfg.learning_rate == prof.finetune_pretrained.learning_rate
    assert tr.progress.step == -(-len(data.finetune) // 512)


def test_score_is_exact_match(data):
    rows = data.dev[:4]
    s = Score.of(rows, [rows[0].answer, "nowhere", rows[2].answer, rows[3].answer.lower() + "x"])
    assert (s.correct, s.total) == (2, 4) and s.accuracy == 50.0
    assert s.to_json() == {"correct": 2, "total": 4, "accuracy": 50.0}


def test_provenance_keeps_the_commit_it_is_given_and_says_where_it_ran():
    p = provenance(torch.device("cpu"), "factgpt x", commit="abc-dirty")
    assert p["commit"] == "abc-dirty" and p["command"] == "factgpt x" and "CPU" in p["device"]
    assert {"torch", "python"} <= p.keys()
    assert len(set(FORMATS.values())) == len(FORMATS)


def test_every_stage_setting_is_a_training_setting_and_every_training_flag_one_too():
    """One source of truth: a profile's stage settings are TrainConfig's fields (one is a shorthand
    for final_tokens), and every training flag of `factgpt pretrain` sets one of them."""
    from factgpt.cli import _train_overrides, build_parser

    train = {f.name for f in dataclasses.fields(TrainConfig)}
    stage = {f.name for f in dataclasses.fields(StageSettings)} - {"final_tokens_per_pretrain_example"}
    assert stage <= train
    args = build_parser().parse_args(["pretrain", "vanilla", "--writing_params_path", "x", "--max_epochs", "1",
                                      "--batch_size", "2", "--learning_rate", "0.1", "--warmup_tokens", "3",
                                      "--final_tokens", "4", "--weight_decay", "0.5", "--shuffle",
                                      "--decay_matmul_weights_only", "--scheduled_first_step", "--reference"])
    overrides = {k: v for k, v in _train_overrides(args).items() if v is not None}
    assert set(overrides) <= train
    cfg = TrainConfig(**overrides)
    assert (cfg.max_epochs, cfg.batch_size, cfg.learning_rate, cfg.warmup_tokens, cfg.final_tokens) == (1, 2, 0.1, 3, 4)
    assert cfg.weight_decay == 0.5 and cfg.shuffle and not cfg.decay_norms_and_embeddings
    assert not cfg.first_step_full_lr and cfg.reference and cfg.pack is False


def test_records_name_their_format(tiny_study):
    res = json.loads((tiny_study["dir"] / "results.json").read_text())
    assert res["format"] == FORMATS["study"]
    assert {"commit", "device", "torch", "python", "command"} <= res.keys()
