"""questions.py: the forms people type, read as the course's question."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factgpt.errors import InputError
from factgpt.questions import FORMS, parse_question


@pytest.mark.parametrize("typed, form", [
    ("Where was Ralf Wadephul born?", "where_was_born"),
    ("where was Ralf Wadephul born?", "where_was_born"),
    ("WHERE WAS Ralf Wadephul BORN", "where_was_born"),
    ("  Where   was Ralf Wadephul born ? ", "where_was_born"),
    ("Where is Ralf Wadephul from?", "where_from"),
    ("where was Ralf Wadephul from", "where_from"),
    ("Ralf Wadephul's birthplace", "birthplace"),
    ("Ralf Wadephul’s place of birth?", "birthplace"),
    ("birthplace of Ralf Wadephul", "birthplace"),
    ("Ralf Wadephul", "name"),
])
def test_every_form_is_the_course_question(typed, form):
    q = parse_question(typed)
    assert q.form == form and q.name == "Ralf Wadephul"
    assert q.text == "Where was Ralf Wadephul born?"


def test_the_name_keeps_its_case():
    assert parse_question("where was ralf wadephul born?").text == "Where was ralf wadephul born?"
    assert parse_question("D. M. Hausman").name == "D. M. Hausman"


@pytest.mark.parametrize("typed, problem", [("", "empty"), ("   ", "empty"), ("???", "expected a name"),
                                            ("Where was born?", "expected a name"), ("12 34", "no name"),
                                            ("Who is Ralf Wadephul?", "expected a name")])
def test_what_is_not_a_question_is_one_clear_error(typed, problem):
    with pytest.raises(InputError, match=problem):
        parse_question(typed, "<stdin>", 3)


@given(st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=12),
       st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=12))
def test_a_name_survives_every_form(first, last):
    name = f"{first} {last}"
    for typed in (f"Where was {name} born?", f"Where is {name} from?", f"{name}'s birthplace", name):
        q = parse_question(typed)
        assert q.form in FORMS and q.text == f"Where was {name} born?", typed
