"""Reading the user's text files strictly, and writing ours atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Iterator

from .errors import InputError

def bundled_path(name: str) -> Path:
    """Path of a data file shipped inside the package."""
    return Path(str(resources.files("factgpt") / "data" / name))


# The trained models shipped inside the package, by name. "recite" (the default of
# `ask` and `evaluate`) is the best course-architecture recipe; "quick" is the
# quick profile's seed-0 vanilla pretrain → finetune model (a course-objective
# model pretrained too briefly to store the facts: it guesses).
SHIPPED_MODELS = {"recite": "weights/recite.safetensors", "quick": "weights/quick.safetensors"}
DEFAULT_MODEL = "recite"


def shipped_model(name: str = DEFAULT_MODEL) -> Path | None:
    """A trained model shipped inside the package, if this installation has it."""
    p = Path(str(resources.files("factgpt") / SHIPPED_MODELS[name]))
    return p if p.is_file() else None


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, refusing missing, empty, binary or non-UTF-8 files."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a folder, not a file")
    raw = p.read_bytes()
    if not raw.strip():
        raise InputError(p, "file is empty")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise InputError(p, "binary file (NUL byte), expected UTF-8 text", line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(p, f"not UTF-8 text (byte 0x{raw[e.start]:02x})", line) from None


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, if `path` cannot be written later."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(p, f"folder {str(parent)!r} does not exist")
    if p.is_dir():
        raise InputError(p, "is a folder, expected a file path")
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash leaves either the old file or the complete new one, never half a file.
    """
    p = Path(path)
    check_writable(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def run_folder(out: str | None, name: str) -> Path:
    """--out, or a new folder runs/NAME-YYYYmmdd-HHMMSS: a run never writes over the committed results/."""
    if out is not None:
        return Path(out)
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    p, k = base, 1
    while p.exists():  # two runs started in the same second
        p, k = base.with_name(f"{base.name}-{k}"), k + 1
    return p
