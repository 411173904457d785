"""`factgpt serve`: the API answers as `ask --json` does, refuses bad input with a 400, sheds load
with a 503, batches concurrent questions, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from starlette.testclient import TestClient

from factgpt.ask import Asker, Reply, answer
from factgpt.checkpoint import load_model
from factgpt.errors import InputError
from factgpt.fileio import bundled_path, shipped_model
from factgpt.pipeline import load_corpus
from factgpt.questions import parse_question
from factgpt.serve import MAX_BODY_BYTES, MAX_QUESTIONS, Batcher, Busy, create_app, model_info

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def asker():
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(shipped_model("recite"), vocab=corpus.vocab)
    return Asker(model, corpus.vocab, meta)


@pytest.fixture(scope="module")
def client(asker):
    with TestClient(create_app(asker, model_info("recite (shipped)", asker.meta, asker))) as c:
        yield c


def test_the_api_answers_what_ask_json_prints_in_order(client):
    qs = ["Khatchig Mouradian", "Where was Zorblax Quimby born?"]
    r = client.post("/api/ask", json={"questions": qs})
    assert r.status_code == 200
    got = r.json()["answers"]
    want = [x.to_json() for x in answer(str(shipped_model("recite")), qs, None, bundled_path("wiki.txt"), "cpu")]
    assert got == json.loads(json.dumps(want))
    assert got[0]["answer"] == "Lebanon" and got[0]["form"] == "name" and got[1]["answer"] is None
    assert len(got[0]["recited_char_confidence"]) == len(got[0]["recited_line"])


@pytest.mark.parametrize("body, problem", [
    ({"questions": [""]}, "empty question"),
    ({"questions": ["???"]}, "expected a name"),
    ({"questions": ["Where was Ann \u2603 born?"]}, "outside the model's vocabulary"),
    ({"questions": ["Khatchig Mouradian"] * (MAX_QUESTIONS + 1)}, "over the limit"),
    ({"questions": []}, "empty list"),
    ({"questions": [3]}, "expected a string"),
    ({"nothing": 1}, "expected {"),
])
def test_bad_questions_get_a_400_and_the_server_goes_on(client, body, problem):
    r = client.post("/api/ask", json=body)
    assert r.status_code == 400 and problem in r.json()["error"], r.text
    assert client.post("/api/ask", json={"question": "Khatchig Mouradian"}).status_code == 200


def test_malformed_and_oversized_bodies_get_a_400(client):
    r = client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    big = json.dumps({"questions": ["x" * (MAX_BODY_BYTES + 10)]}).encode()
    r = client.post("/api/ask", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "over the limit" in r.json()["error"]


def test_the_page_is_self_contained_and_info_names_the_model(client):
    page = client.get("/").text
    assert "<form" in page and "http://" not in page and "https://" not in page  # nothing from the internet
    info = client.get("/api/info").json()
    assert info["shipped_from"]["recipe"] and list(info["rule"])[0] == "line_mean" and len(info["rule"]) == 2
    assert client.get("/nowhere").status_code == 404


class SlowAsker:
    """Answers once released; counts the batches it was given."""

    def __init__(self):
        self.release = threading.Event()
        self.batches: list[int] = []

    def ask(self, items):
        self.release.wait(30)
        self.batches.append(len(items))
        return [Reply(q.text, "X", 1.0, None, 1.0) for q in items]


def test_concurrent_questions_share_a_batch_and_a_full_queue_says_busy_at_once():
    async def scenario():
        slow = SlowAsker()
        b = Batcher(slow, window_s=0.05, max_batch=8, bound=4)
        await b.start()
        q = [parse_question("Ann Example")]
        first = [asyncio.create_task(b.ask(q)) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert b.pending == 3
        t0 = time.perf_counter()
        with pytest.raises(Busy):  # 3 waiting + 2 more > the bound of 4: refused without waiting
            await b.ask(q * 2)
        assert time.perf_counter() - t0 < 1.0
        slow.release.set()
        got = await asyncio.gather(*first)
        await b.stop()
        return slow.batches, got, b.pending

    batches, got, pending = asyncio.run(scenario())
    assert batches == [3]  # the three requests arrived inside one window: one batch
    assert [len(g) for g in got] == [1, 1, 1] and pending == 0


def test_a_lone_question_after_a_lone_one_does_not_wait_out_the_window():
    async def scenario():
        slow = SlowAsker()
        slow.release.set()
        b = Batcher(slow, window_s=600, max_batch=8, bound=8)  # a window no answer could wait out
        await b.start()
        q = [parse_question("Ann Example")]
        lone = [await asyncio.wait_for(b.ask(q), 60) for _ in range(2)]
        together = await asyncio.wait_for(asyncio.gather(*[b.ask(q) for _ in range(3)]), 60)
        await b.stop()
        return slow.batches, lone, together

    batches, lone, together = asyncio.run(scenario())
    # the three sent at once were all waiting when the worker looked: one batch, without the window
    assert batches == [1, 1, 3] and len(lone) == 2 and len(together) == 3


def test_mps_is_a_clear_error_where_torch_has_none():
    import torch

    from factgpt.precision import resolve_device

    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(InputError, match="no Apple MPS device"):
        resolve_device("mps", mps=True)
    assert resolve_device("auto", mps=True).type in ("cpu", "cuda")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, threads: int | None = 1) -> subprocess.Popen:
    """`factgpt serve` on loopback, up and answering. threads: torch's threads (OMP_NUM_THREADS); the
    tests use one so as not to contend with the test process, None leaves torch's default (all cores)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.Popen([sys.executable, "-m", "factgpt", "serve", "--port", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not come up")


def test_serve_listens_on_loopback_and_stops_cleanly_on_sigterm():
    port = free_port()
    proc = start_server(port)
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", data=b'{"question": "Khatchig Mouradian"}',
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.loads(r.read())["answers"][0]["answer"] == "Lebanon"
        listening = subprocess.run(["cat", "/proc/net/tcp"], capture_output=True, text=True).stdout
        assert f"0100007F:{port:04X}" in listening  # 127.0.0.1, not 0.0.0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # uvicorn shuts down (requests finished, lifespan closed), then re-raises the signal it caught, so
    # that the exit status says what stopped it
    assert proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in err and "ERROR" not in err, err
