"""factgpt: how pretraining puts facts into a character-level transformer,
and how finetuning gets them out."""

__version__ = "0.1.0"
