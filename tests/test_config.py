"""Profiles and recipes: resolved through their base, every setting typed, bad files refused in one line."""

from __future__ import annotations

import json

import pytest

from factgpt.cli import main
from factgpt.config import load, same_training, shipped_names
from factgpt.errors import InputError


def write(tmp_path, name, data):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(data))
    return p


def test_the_course_numbers_stand_once_and_every_other_file_leads_to_them():
    course = load("profiles", "course")
    assert (course.model.n_layer, course.model.n_head, course.model.n_embd, course.model.block_size) == (4, 8, 256, 128)
    assert course.pretrain.max_epochs == 650 and course.pretrain.learning_rate == 6e-3
    for kind in ("profiles", "recipes"):
        for name in shipped_names(kind):
            p = load(kind, name)
            if name != "course":
                assert p.model.n_embd > 0 and p.pretrain.max_epochs  # resolved from the chain


def test_a_cpu_runs_the_small_word_key_profile_and_course_keyed_is_the_course_model_on_a_cpu():
    import torch

    from factgpt.study import default_profile

    assert default_profile(torch.device("cpu")) == "wordkeys_small_e70" and default_profile(torch.device("cuda")) == "course"
    small, keyed = load("profiles", "wordkeys_small_e70"), load("profiles", "course_keyed")
    quick, course = load("profiles", "quick"), load("profiles", "course")
    # the default changes the model only: course_keyed's data, objective and finetuning
    assert small.data == keyed.data and small.finetune_pretrained == keyed.finetune_pretrained
    assert small.finetune_scratch == keyed.finetune_scratch
    assert small.model.word_keys and small.model.n_layer < course.model.n_layer and small.model.n_embd < course.model.n_embd
    # its cosine ends where its pretraining stops (127 tokens an example an epoch), in fp32 whatever the CPU
    assert small.pretrain.final_tokens_per_pretrain_example == 127 * small.pretrain.max_epochs
    assert small.common.precision == "fp32"
    # the 60-epoch default before it, kept by name: the same but for the length of its cosine
    before = load("profiles", "wordkeys_small_e60")
    assert before.pretrain.max_epochs == 60 < small.pretrain.max_epochs == 70
    assert before.with_settings(pretrain={"max_epochs": 70, "final_tokens_per_pretrain_example": 127 * 70}).to_dict() \
        | {"name": "", "description": ""} == small.to_dict() | {"name": "", "description": ""}
    # course_keyed: the course's model and objectives on focused lines, pretrained long enough to store the facts
    assert keyed.model == quick.model and keyed.model.n_embd == course.model.n_embd and not keyed.model.word_keys
    assert keyed.data.birth_front and not quick.data.birth_front and keyed.data.max_chars == 80
    assert keyed.data.question_key and keyed.pretrain.max_epochs >= 5 * quick.pretrain.max_epochs
    # the profile before it, kept by name, is the keyed one without its keys and 40 epochs shorter
    before = load("profiles", "laptop120")
    assert not before.data.question_key and before.pretrain.max_epochs == keyed.pretrain.max_epochs - 40
    assert before.data.birth_front and before.finetune_pretrained == keyed.finetune_pretrained
    assert keyed.finetune_pretrained.max_epochs < course.finetune_pretrained.max_epochs


def test_a_renamed_profile_names_its_new_name():
    with pytest.raises(InputError, match="now named 'course_keyed'"):
        load("profiles", "laptop")
    with pytest.raises(InputError, match="now named 'wordkeys_small_e60'.*default is now wordkeys_small_e70"):
        load("profiles", "wordkeys_small")


@pytest.mark.golden
@pytest.mark.parametrize("profile", ["wordkeys_small_e70", "wordkeys_small_e60", "course_keyed", "laptop120"])
def test_the_cpu_profiles_still_train_what_their_committed_results_ran(profile):
    """A profile whose settings drift from its results no longer reproduces them, and
    `reproduce --resume` or `merge` of a further seed would mix two trainings."""
    from pathlib import Path

    recorded = json.loads((Path(__file__).resolve().parent.parent / "results" / profile / "results.json")
                          .read_text(encoding="utf-8"))["profile_settings"]
    assert same_training(recorded, load("profiles", profile))


def test_a_setting_added_later_counts_at_its_default_in_a_record_that_lacks_it():
    prof = load("profiles", "course_keyed")
    old = prof.to_dict()
    del old["data"]["drop_dates"]
    assert same_training(old, prof)
    assert not same_training(old, prof.with_settings(data={"drop_dates": True}))
    assert not same_training(old, prof.with_settings(pretrain={"max_epochs": 3}))


def test_a_file_changes_its_base_setting_by_setting(tmp_path):
    base = write(tmp_path, "mine", {"base": "course_keyed", "description": "d", "pretrain": {"max_epochs": 3}})
    child = write(tmp_path, "child", {"base": "mine.json", "data": {"max_chars": 64}})
    laptop = load("profiles", "course_keyed")
    p = load("profiles", str(child))
    assert p.name == "child" and p.description == "d"
    assert p.pretrain.max_epochs == 3 and p.pretrain.batch_size == laptop.pretrain.batch_size
    assert p.data.max_chars == 64 and p.model == laptop.model and p.common == laptop.common
    assert load("profiles", str(base)).data.max_chars == laptop.data.max_chars


@pytest.mark.parametrize("data, why", [
    ({"base": "course", "pretrain": {"batch_sise": 32}}, "bad.json: pretrain.batch_sise: unknown setting"),
    ({"base": "course", "pretrain": {"batch_size": "32"}}, 'bad.json: pretrain.batch_size: expected an integer, got "32"'),
    ({"base": "course", "pretrain": {"batch_size": 3.5}}, "bad.json: pretrain.batch_size: expected an integer"),
    ({"base": "course", "common": {"shuffle": 1}}, "bad.json: common.shuffle: expected true or false, got 1"),
    ({"base": "course", "model": {"embd_pdrop": True}}, "bad.json: model.embd_pdrop: expected a number, got true"),
    ({"base": "course", "pretrain": {"betas": [0.9]}}, "bad.json: pretrain.betas: expected a list of 2 numbers"),
    ({"base": "course", "colour": {}}, "bad.json: unknown section 'colour'"),
    ({"base": "course", "pretrain": 3}, "bad.json: pretrain: expected an object of settings"),
    ({"base": "no_such_base"}, "unknown profile 'no_such_base'"),
    ({"base": 7}, "bad.json: base: expected the name or path"),
    ({"model": {"n_layer": 1}}, "bad.json: model.n_head: missing"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_setting(tmp_path, data, why):
    p = write(tmp_path, "bad", data)
    with pytest.raises(InputError) as e:
        load("profiles", str(p))
    assert why in str(e.value) and "\n" not in str(e.value)


def test_a_chain_of_bases_that_comes_back_is_refused(tmp_path):
    write(tmp_path, "a", {"base": "b.json"})
    write(tmp_path, "b", {"base": "a.json"})
    with pytest.raises(InputError, match="comes back to itself"):
        load("profiles", str(tmp_path / "a.json"))


def test_the_command_line_reports_a_bad_profile_in_one_line(tmp_path, capsys):
    p = write(tmp_path, "bad", {"base": "smoke", "pretrain": {"max_epochs": "many"}})
    assert main(["reproduce", "--profile", str(p), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: pretrain.max_epochs: expected an integer" in err


def test_settings_changed_in_code_are_checked_like_a_file():
    p = load("profiles", "smoke")
    assert p.with_settings(pretrain={"max_epochs": 1}).pretrain.max_epochs == 1
    with pytest.raises(InputError, match="pretrain.max_epoch: unknown setting"):
        p.with_settings(pretrain={"max_epoch": 1})


def test_profiles_and_recipes_are_separate_namespaces():
    """A name means one thing: no profile shares its name with a recipe (a base is looked up in
    the file's own kind first, then in the other)."""
    assert not set(shipped_names("profiles")) & set(shipped_names("recipes"))


def test_a_run_started_under_a_renamed_profile_resumes_under_its_new_name(tmp_path):
    from factgpt.study import StudyOptions, _plan

    (tmp_path / "results.json").write_text(json.dumps(
        {"partial": True, "plan": {"profile": "laptop", "seeds": [0], "variants": ["vanilla"]}}))
    profile, seeds, variants, prior = _plan(StudyOptions(out=str(tmp_path), resume=True))
    assert (profile, seeds, variants) == ("course_keyed", [0], ["vanilla"]) and prior["plan"]["profile"] == "laptop"
    # given again under its new name, the profile agrees with the plan
    assert _plan(StudyOptions(out=str(tmp_path), resume=True, profile="course_keyed"))[0] == "course_keyed"


def test_birth_placed_without_birth_front_is_refused_in_one_line(tmp_path):
    """birth_placed only chooses which birth clause birth_front moves; alone it would do nothing."""
    path = write(tmp_path, "placed", {"base": "course_keyed", "data": {"birth_front": False, "birth_placed": True}})
    with pytest.raises(InputError, match="data.birth_placed: needs data.birth_front"):
        load("profiles", str(path))
    ok = write(tmp_path, "placed_ok", {"base": "course_keyed", "data": {"birth_front": True, "birth_placed": True}})
    assert load("profiles", str(ok)).data.birth_placed
