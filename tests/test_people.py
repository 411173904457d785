"""The name of a wiki.txt line, initials included."""

from factgpt.datasets import documents
from factgpt.fileio import bundled_path
from factgpt.heldout import name_of
from factgpt.people import line_name, split_name


def test_initials_and_suffixes_stay_in_the_name():
    assert split_name("Daniel M. Hausman. Daniel M Hausman (b. March 27, 1947, Chicago) is a philosopher .") == \
        ("Daniel M. Hausman", "Daniel M Hausman (b. March 27, 1947, Chicago) is a philosopher .")
    assert line_name("A. G. E. Blake. Blake was born in Leeds .") == "A. G. E. Blake"
    assert line_name("J.C. Patterson. Born in Armagh, Ireland in 1839 .") == "J.C. Patterson"
    assert line_name("Asa G. Yancey, Sr.. Asa G Yancey Sr., M.D., was born in Atlanta .") == "Asa G. Yancey, Sr."
    assert line_name("Theodore J. van den Broek. He was born in Zwolle .") == "Theodore J. van den Broek"


def test_a_sentence_after_a_roman_numeral_is_not_part_of_the_name():
    line = "Anastasius I. Pope Saint Anastasius I, born in Rome the son of Maximus, was pope from 399 to 401 ."
    assert split_name(line)[0] == "Anastasius I"
    assert line_name("John Stephen. Born in Glasgow, Stephen became a welder .") == "John Stephen"
    assert split_name("no full stop here") == ("no full stop here", "")


def test_every_training_person_with_a_line_gets_its_exact_name():
    text = bundled_path("wiki.txt").read_text(encoding="utf-8")
    lines = documents(text)
    found = {line_name(d) for d in lines}
    train = {name_of(q.split("\t")[0]) for q in bundled_path("birth_places_train.tsv").read_text(encoding="utf-8").splitlines()}
    with_line = {n for n in train if any(d.startswith(n + ". ") for d in lines)}
    assert len(with_line) > 1980  # 97 of them hold ". " in the name
    assert with_line <= found
