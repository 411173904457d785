"""`factgpt serve`: the model behind a JSON API and one page, loaded once.

  GET  /           the page: a question box, the answer, the recited line with the place
                   marked and every character shaded by the model's confidence in it
  GET  /api/info   the model's provenance, its abstention rule, and the batches decoded so far
  POST /api/ask    {"questions": [...]} (or {"question": "..."}) → {"answers": [...]}, each
                   answer the object `factgpt ask --json` prints for that question, in order

Concurrent requests are answered together: the first question to arrive opens a
short window (BATCH_WINDOW_S) in which others join its batch (a lone question
after a lone one, one user's, does not wait), and the batch is
decoded at once on one worker thread (the model is not thread-safe, and one
batch uses the cores better than many small ones). What waits is bounded: past
QUEUE_BOUND questions pending, a request is answered 503 at once instead of
joining a queue that would only grow. Bad input is a 400 with a JSON error and
changes nothing; the server listens on the loopback address unless told
otherwise, and uvicorn stops it cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import json
import platform
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from .ask import Asker, Reply, check_question
from .errors import InputError

MAX_QUESTIONS = 64  # a request's questions
MAX_BODY_BYTES = 16 * 1024
QUEUE_BOUND = 256  # questions waiting or being decoded
BATCH_WINDOW_S = 0.025
MAX_BATCH = 64  # questions decoded together


def _release_freed_memory() -> None:
    """Hand memory freed by a batch back to the system (glibc keeps it otherwise: decoding batches of
    changing shapes left the server's memory twice what it was after the first ones)."""
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_libc = _load_libc()
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20


def keep_large_blocks_out_of_the_heap() -> None:
    """Blocks of 1 MB or more (a batch's key/value caches, its activations) from mmap, handed back
    to the system when freed. By default glibc raises that threshold after such a block is freed,
    so a server's later batches take their large blocks from the heap, where what a batch leaves
    behind depends on the batch: the same load left the server a tenth larger in some runs than in
    others. Called once, before serving."""
    if _libc is not None:
        _libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


class Busy(Exception):
    """The queue is at its bound."""


@dataclass
class _Job:
    questions: list
    done: asyncio.Future


class Batcher:
    """Questions from many requests, decoded in shared batches on one worker thread."""

    def __init__(self, asker: Asker, window_s: float = BATCH_WINDOW_S, max_batch: int = MAX_BATCH,
                 bound: int = QUEUE_BOUND):
        self.asker, self.window_s, self.max_batch, self.bound = asker, window_s, max_batch, bound
        self.pending = 0  # questions accepted and not yet answered
        self.batches = 0  # batches decoded, and the questions in them
        self.questions = 0
        self._last = 1  # questions in the last batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        # One thread for every batch: the model is not thread-safe, and each new thread would get
        # its own malloc arena, so that memory would grow with the threads a pool happened to use.
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._worker.shutdown(wait=True)

    async def ask(self, questions: list) -> list[Reply]:
        if self.pending + len(questions) > self.bound:
            raise Busy
        assert self._queue is not None, "Batcher.start() first"
        self.pending += len(questions)
        job = _Job(questions, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        try:
            return await job.done
        finally:
            self.pending -= len(questions)

    def _decode(self, questions: list) -> list[Reply]:
        try:
            return self.asker.ask(questions)
        finally:
            _release_freed_memory()

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            n = len(jobs[0].questions)
            deadline = loop.time() + self.window_s
            while n < self.max_batch and not self._queue.empty():  # what is already waiting joins
                job = self._queue.get_nowait()
                jobs.append(job)
                n += len(job.questions)
            # Then, under load, the batch waits out the window for more: the clients answered
            # together come back together, and two halves that took turns would each be decoded at
            # a half batch's worse rate. A lone question after a lone one (one user) does not wait.
            while n < self.max_batch and self._last > 1:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                n += len(job.questions)
            questions = [q for j in jobs for q in j.questions]
            try:
                replies = await loop.run_in_executor(self._worker, self._decode, questions)
            except Exception as e:  # a failure answers its batch's requests, and the server goes on
                for j in jobs:
                    if not j.done.done():
                        j.done.set_exception(e)
                continue
            self.batches += 1
            self.questions += len(questions)
            self._last = len(questions)
            k = 0
            for j in jobs:
                if not j.done.done():
                    j.done.set_result(replies[k : k + len(j.questions)])
                k += len(j.questions)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def parse_body(body: bytes, asker: Asker) -> list:
    """The checked questions of a request body, or InputError naming what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise InputError("body", f"{len(body)} bytes, over the limit of {MAX_BODY_BYTES}")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError("body", f"not JSON: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("question"), str) and "questions" not in data:
        questions = [data["question"]]
    elif isinstance(data, dict) and isinstance(data.get("questions"), list):
        questions = data["questions"]
    else:
        raise InputError("body", 'expected {"questions": ["Where was NAME born?", ...]} or {"question": "..."}')
    if not questions:
        raise InputError("questions", "empty list")
    if len(questions) > MAX_QUESTIONS:
        raise InputError("questions", f"{len(questions)} questions, over the limit of {MAX_QUESTIONS} a request")
    out = []
    for i, q in enumerate(questions):
        if not isinstance(q, str):
            raise InputError(f"questions[{i}]", f"expected a string, got {type(q).__name__}")
        out.append(check_question(q, asker.vocab, asker.model.max_len, f"questions[{i}]"))
    return out


def create_app(asker: Asker, info: dict[str, Any], **batcher: Any) -> Starlette:
    """The ASGI app: asker answers, info is what /api/info shows."""
    batch = Batcher(asker, **batcher)
    page = (resources.files("factgpt") / "web" / "index.html").read_text(encoding="utf-8")

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def api_info(request: Request) -> JSONResponse:
        return JSONResponse({**info, "batches_decoded": batch.batches, "questions_decoded": batch.questions})

    async def api_ask(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(400, f"body: {declared} bytes, over the limit of {MAX_BODY_BYTES}")
        body = b""
        async for chunk in request.stream():  # read no further than the limit allows
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _error(400, f"body: over the limit of {MAX_BODY_BYTES} bytes")
        try:
            questions = parse_body(body, asker)
        except InputError as e:
            return _error(400, str(e))
        try:
            replies = await batch.ask(questions)
        except Busy:
            return _error(503, f"busy: {batch.pending} questions are waiting; try again shortly",
                          retry_after_s=1)
        return JSONResponse({"answers": [r.to_json() for r in replies]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await batch.start()
        try:
            yield
        finally:
            await batch.stop()

    app = Starlette(routes=[Route("/", index), Route("/api/info", api_info),
                            Route("/api/ask", api_ask, methods=["POST"])], lifespan=lifespan)
    app.state.batcher = batch
    return app


def model_info(path: str, meta: dict[str, Any], asker: Asker) -> dict[str, Any]:
    """What the page shows of the model: where it came from and when it refuses."""
    shipped = meta.get("shipped_from", {})
    return {"model": path, "recites": asker.recites,
            "rule": asker.rule.thresholds if asker.rule else None,
            "shipped_from": shipped, "abstention": meta.get("abstention"),
            "torch_threads": torch.get_num_threads(),
            "examples": ["Khatchig Mouradian", "Where was Daniel M. Hausman born?", "Where was Zorblax Quimby born?"]}
