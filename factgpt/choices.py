"""The names commands choose among, kept free of torch so that parsing a command line
(and `factgpt --help`) does not pay the second torch takes to import."""

VARIANTS = ("vanilla", "synthesizer")  # the attention variants (model.py)
PRECISIONS = ("auto", "fp32", "bf16", "tf32")  # the arithmetic of training and decoding (precision.py)
