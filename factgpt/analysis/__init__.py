"""What a finetuned model knows, what it guesses, and what it cannot tell apart.

- confidence: reliability diagrams, expected calibration error and AUROC of
  the answer's probability on the dev set;
- unseen: answers and confidence for made-up names that occur in no data file;
- errors: dev accuracy split by what pretraining could have shown, with examples;
- report: one self-contained report.html of the whole study;
- command: `factgpt analyze` (add_arguments, main).

run_analysis(model_paths, out_dir, results_json, seed) does it all.
"""

from .command import add_arguments, main, resolve_model_paths


def __getattr__(name: str):
    # run_analysis pulls in torch and matplotlib: imported when asked for, not when the CLI
    # only needs the command's arguments
    if name == "run_analysis":
        from .run import run_analysis

        return run_analysis
    raise AttributeError(name)

__all__ = ["run_analysis", "add_arguments", "main", "resolve_model_paths"]
