"""Recipes beyond the course: changes to training that make the facts extractable.

The course's pretrain → finetune recipe stores facts it can barely get out:
the answer is in the person's wiki.txt line for 91% of dev people, yet the
model answers about a quarter. A recipe is a profile (the sections of
factgpt/configs/profiles/*.json) plus a "recipe" section saying what it changes:

  track        "A": the course model (4 layers, 8 heads, 256-d, block 128); "B": any model
  mix_qa       share of pretraining examples that are question-answer pairs of
               the training people (mixed training); 0 keeps pretraining on wiki.txt only
  views        corruption views of each line inside one step (the line comes
               `views` times in the same batch, each time corrupted anew)
  objective    "span": the course's span corruption; "lm": next-character
               prediction on each whole (cut) line, every character a target;
               "multispan": T5-style corruption, several short spans masked in one
               example (see MultiSpanCorruption; noise_density and mean_span set it)
  recite       the model answers by reciting first: every (question-keyed, cut) line
               ends with ⁇, and a training person's line then with the answer and ⁇;
               asked "Where was NAME born? ", the model writes the line it stored,
               then ⁇ and the answer, which it has learned to copy out of the line
               from the training people (needs data.question_key and the lm
               objective; replaces mixed questions)
  counterfactual  with recite: share of pretraining examples that teach copying
               rather than remembering: a training person's line with its birthplace
               swapped for another training answer (drawn anew every time), followed by
               ⁇, that place and ⁇; only the answer is a target, and the word-key
               table is read, not written, so that no false fact is stored
  span_answer  with recite: the answer is the piece of the recitation (1 to 4 of its
               words) that the model itself finds most likely after the recitation's ⁇,
               instead of free greedy decoding, which can drift while copying ("Shanghaha");
               both decodings are always measured and reported
  qa_reads_only  with a word-key model (model.word_keys, see wordkeys.py): the
               question-answer examples read the key table but do not train it,
               so that only the lines write facts and the questions learn to read them;
               with recite, the answers after the line's ⁇ (the key table would
               otherwise learn each answer by the line's last word, not copy it)
The changes to each line (data.birth_front, data.name_key, data.question_key:
the birth clause first, the name before every sentence, the line keyed by its
question) are a profile's data settings, lines.py, shared with the study.
A finetune_pretrained stage of 0 epochs skips finetuning (mixed training has
already taught the question format).

Every recipe is scored the same way, whatever it changes: finetune on the
training pairs minus the fixed held-out slice (factgpt/heldout.py), score on
the slice (what choices are made on) and on birth_dev.tsv (reported only).
Pretraining never sees a held-out or dev question.

The package, one module per concern:
  spec         RecipeSpec, loading a recipe file, its tiny version for tests
  sources      what pretraining draws its examples from (lines, multi-span, mixed, drills)
  diagnostics  what a run measures besides accuracy (line recall, where answers went wrong)
  runner       `factgpt reproduce --recipe`: every seed, results.json, predictions, models
(`factgpt merge` of a recipe's seeds run apart is factgpt/merge.py's, as a study's is.)
The recite decoding lives in factgpt/recite.py and is used by the shipped model too.
"""

from ..evaluate import line_recall
from .diagnostics import RECITE_ERRORS, recite_errors, training_lines
from .runner import run_once, run_recipe, write_recipe_predictions
from .sources import Counterfactual, LineLM, MixedSource, MultiSpanCorruption, recipe_source, recite_suffixes
from .spec import Recipe, RecipeSpec, course_architecture, essential_settings, load_recipe, recipe_names, shrink

__all__ = ["RECITE_ERRORS", "line_recall",
           "recite_errors", "training_lines", "run_once", "run_recipe",
           "write_recipe_predictions", "Counterfactual", "LineLM", "MixedSource", "MultiSpanCorruption",
           "recipe_source", "recite_suffixes", "Recipe", "course_architecture", "essential_settings", "RecipeSpec", "load_recipe", "recipe_names", "shrink"]
