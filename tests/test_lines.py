"""The changes made to each wiki.txt line before pretraining (lines.py)."""

import re

from factgpt.config import DataSettings
from factgpt.lines import change_lines, drop_dates
from factgpt.people import split_name


def test_drop_dates_takes_out_dates_and_keeps_the_place():
    assert drop_dates("Stanley Corrsin. Corrsin was born on 3 April 1920 in Philadelphia, Pennsylvania .") == \
        "Stanley Corrsin. Corrsin was born in Philadelphia, Pennsylvania ."
    assert drop_dates("Eduard Ender. Eduard Ender (3 March 1822 Rome -- 28 December 1883 London) was a painter .") == \
        "Eduard Ender. Eduard Ender (Rome -- London) was a painter ."
    assert drop_dates("Bob Ray. Bob Ray (1950-2000) was born in Ohio .") == "Bob Ray. Bob Ray was born in Ohio ."
    assert drop_dates("Ann Lee. Born May 4, 1901, in Oslo .") == "Ann Lee. Born in Oslo ."
    assert drop_dates("Lucy Lee. Lucy was born at Boston, USA, on 21 November 1838, of English parents .") == \
        "Lucy Lee. Lucy was born at Boston, USA, of English parents ."


def test_drop_dates_on_every_line_keeps_the_name_removes_every_year_and_only_removes(wiki_text):
    docs = [d for d in wiki_text.split("\n") if d]
    changed = change_lines(wiki_text, DataSettings(drop_dates=True)).split("\n")[:-1]
    assert len(changed) == len(docs)
    for before, after in zip(docs, changed):
        assert split_name(after)[0] == split_name(before)[0]
        assert not re.search(r"\b1[5-9]\d\d\b", split_name(after)[1])
        # what is left is the line's own words, in order (numbers aside)
        words = iter(re.findall(r"[^\W\d_]+", before))
        assert all(any(w == v for v in words) for w in re.findall(r"[^\W\d_]+", after))



def test_placed_birth_front_moves_the_birth_clause_that_names_a_place():
    """The first "born" followed by "in"/"at" and a capitalised word (not a month) within 60
    characters is moved; "American-born" is no birth clause; without such a clause the first "born"
    is moved, as birth_front does; change_lines uses it with data.birth_placed."""
    from factgpt.lines import birth_front, placed_birth_front

    # no place within 60 characters of the first "born": the second clause is moved
    line = "Ann Lee. Ann Lee (born 23 June 1940) is an Australian and American country and pop singer born in Melbourne ."
    assert placed_birth_front(line) == ("Ann Lee. born in Melbourne . Ann Lee (born 23 June 1940) is an Australian "
                                        "and American country and pop singer")
    assert birth_front(line).startswith("Ann Lee. born 23 June 1940)")
    # "in March" is no place; "American-born" no birth clause
    assert placed_birth_front("Bo Ek. Bo Ek is an American-born writer .") == "Bo Ek. Bo Ek is an American-born writer ."
    dated = "Bo Ek. Bo Ek (born in March 1950) is a writer ."
    assert placed_birth_front(dated) == birth_front(dated)
    assert placed_birth_front("Di Fo. Di Fo is a writer .") == "Di Fo. Di Fo is a writer ."
    text = line + "\n" + dated + "\n"
    assert change_lines(text, DataSettings(birth_front=True, birth_placed=True)).split("\n")[0] == placed_birth_front(line)
    assert change_lines(text, DataSettings(birth_front=True)).split("\n")[0] == birth_front(line)
