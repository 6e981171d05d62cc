"""Benchmark B, peer: DSPy's per-call overhead on cache hits.

A stub OpenAI-compatible server on 127.0.0.1 answers every chat completion
with a well-formed ChatAdapter answer. The first call of each request fills
DSPy's cache; every timed call is a cache hit that never reaches the server
(checked by counting the server's requests). Measured, like bench/overhead.rs:

- dspy.LM.__call__ with the exact prompt of our bundled program
  (bench/out/overhead_prompt.txt, written by the overhead example), on a
  memory-cache hit and on a disk-cache hit (memory cache off);
- dspy.Predict of the same signature on a cached answer;
- dspy.Evaluate of 1,000 cached examples (num_threads=4, like ours).

Each as a user runs it (the LM's call history on, DSPy's default) and bare
(`dspy.configure(disable_history=True)`), checked by the history's length.

Usage: python bench/dspy_overhead.py --out bench/out/dspy.json [--calls 20000]
"""

import argparse
import http.server
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ANSWER = """[[ ## taxonomy_path ## ]]
rust/tokio-task-cancellation

[[ ## name ## ]]
tokio-task-cancellation

[[ ## skill_style ## ]]
minimal

[[ ## subdirectories ## ]]
["references", "examples"]

[[ ## keywords ## ]]
["tokio", "cancellation", "async", "tasks"]

[[ ## description ## ]]
Use when you need to cancel Tokio tasks safely with abort handles, cancellation tokens and a graceful shutdown of spawned work.

[[ ## completed ## ]]"""

HITS = {"n": 0}


class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        HITS["n"] += 1
        body = json.dumps(
            {
                "id": "cmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "stub-model",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def stats_us(v):
    v = sorted(v)
    n = len(v)
    return {
        "n": n,
        "median_us": v[n // 2],
        "mean_us": sum(v) / n,
        "p99_us": v[min(n - 1, n * 99 // 100)],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--prompt", default=os.path.join(ROOT, "bench/out/overhead_prompt.txt"))
    a = ap.parse_args()

    out_dir = os.path.dirname(os.path.abspath(a.out))
    cache_dir = os.path.join(out_dir, "dspy_cache")
    import shutil

    shutil.rmtree(cache_dir, ignore_errors=True)
    os.environ["DSPY_CACHEDIR"] = cache_dir

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    import dspy
    from typing import Literal

    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=cache_dir)
    lm = dspy.LM(
        "openai/stub-model",
        api_base=f"http://127.0.0.1:{port}/v1",
        api_key="stub",
        temperature=0.0,
        max_tokens=256,
        cache=True,
        num_retries=0,
    )
    prompt = open(a.prompt).read()

    # 1. LM call, memory-cache hit.
    lm(prompt)
    assert HITS["n"] == 1, HITS
    for _ in range(a.calls // 10):
        lm(prompt)
    call_mem = []
    for _ in range(a.calls):
        t = time.perf_counter()
        lm(prompt)
        call_mem.append((time.perf_counter() - t) * 1e6)
    assert HITS["n"] == 1, "cache hits reached the server"
    assert len(lm.history) > 0, "the call history was off"
    lm.history.clear()
    # The same bare: no call history (dspy.configure(disable_history=True)).
    dspy.configure(disable_history=True)
    call_mem_bare = []
    for _ in range(a.calls):
        t = time.perf_counter()
        lm(prompt)
        call_mem_bare.append((time.perf_counter() - t) * 1e6)
    assert not lm.history, "disable_history left a history"
    dspy.configure(disable_history=False)

    # 2. Disk-cache hit (memory cache off): DSPy's persistent tier.
    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=False, disk_cache_dir=cache_dir)
    call_disk = []
    for _ in range(max(100, a.calls // 20)):
        t = time.perf_counter()
        lm(prompt)
        call_disk.append((time.perf_counter() - t) * 1e6)
    assert HITS["n"] == 1
    lm.history.clear()
    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=cache_dir)

    # 3. Predict on a cached answer (ChatAdapter renders, calls, parses).
    import yaml

    cats = yaml.safe_load(open(os.path.join(ROOT, "config/taxonomy.yaml")))["categories"]
    categories = ", ".join(c["name"] for c in cats)
    trainset = json.load(open(os.path.join(ROOT, "config/training/trainset.json")))

    class SkillUnderstanding(dspy.Signature):
        """Turn a request to create an agent skill into the skill's metadata."""

        categories: str = dspy.InputField(desc="the taxonomy's categories")
        task_description: str = dspy.InputField(desc="the request")
        taxonomy_path: str = dspy.OutputField(desc="category/name")
        name: str = dspy.OutputField(desc="kebab-case skill name")
        skill_style: Literal["comprehensive", "navigation_hub", "minimal"] = dspy.OutputField()
        subdirectories: list[Literal["references", "guides", "templates", "scripts", "examples"]] = dspy.OutputField()
        keywords: list[str] = dspy.OutputField()
        description: str = dspy.OutputField()

    dspy.configure(lm=lm)
    predict = dspy.Predict(SkillUnderstanding)
    before = HITS["n"]
    td = trainset[0]["task_description"]
    r = predict(categories=categories, task_description=td)
    assert r.taxonomy_path == "rust/tokio-task-cancellation", r
    assert HITS["n"] == before + 1, "the stub answer did not parse on the first try"
    prog = []
    for _ in range(max(1000, a.calls // 5)):
        t = time.perf_counter()
        predict(categories=categories, task_description=td)
        prog.append((time.perf_counter() - t) * 1e6)
    assert HITS["n"] == before + 1
    lm.history.clear()
    dspy.configure(disable_history=True)
    prog_bare = []
    for _ in range(max(1000, a.calls // 5)):
        t = time.perf_counter()
        predict(categories=categories, task_description=td)
        prog_bare.append((time.perf_counter() - t) * 1e6)
    assert not lm.history
    dspy.configure(disable_history=False)

    # 4. Evaluate 1,000 cached examples.
    def metric(gold, pred, trace=None):
        tax = float(gold.taxonomy_path == pred.taxonomy_path)
        name = float(gold.name == pred.name)
        style = float(gold.skill_style == pred.skill_style)
        return 0.4 * tax + 0.3 * name + 0.3 * style

    devset = []
    for i in range(1000):
        e = trainset[i % len(trainset)]
        devset.append(
            dspy.Example(
                categories=categories,
                task_description=f"{e['task_description']} (variant {i})",
                taxonomy_path=e["expected_taxonomy_path"],
                name=e["expected_name"],
                skill_style=e["expected_skill_style"],
            ).with_inputs("categories", "task_description")
        )
    evaluate = dspy.Evaluate(devset=devset, metric=metric, num_threads=4, display_progress=False, display_table=False)
    before = HITS["n"]
    t = time.perf_counter()
    evaluate(predict)
    fill_ms = (time.perf_counter() - t) * 1e3
    assert HITS["n"] == before + 1000, (HITS, before)
    eval_ms = []
    for _ in range(3):
        lm.history.clear()
        t = time.perf_counter()
        evaluate(predict)
        eval_ms.append((time.perf_counter() - t) * 1e3)
    assert HITS["n"] == before + 1000
    assert lm.history, "evaluation kept no history"
    lm.history.clear()
    dspy.configure(disable_history=True)
    eval_bare_ms = []
    for _ in range(3):
        t = time.perf_counter()
        evaluate(predict)
        eval_bare_ms.append((time.perf_counter() - t) * 1e3)
    assert not lm.history
    dspy.configure(disable_history=False)

    res = {
        "benchmark": "overhead",
        "side": "dspy",
        "version": dspy.__version__,
        "python": sys.version.split()[0],
        "call_memory_hit": stats_us(call_mem),
        "call_memory_hit_bare": stats_us(call_mem_bare),
        "call_disk_hit": stats_us(call_disk),
        "predict_cached": stats_us(prog),
        "predict_cached_bare": stats_us(prog_bare),
        "evaluate_1000_cached_ms": statistics.median(eval_ms),
        "evaluate_1000_cached_bare_ms": statistics.median(eval_bare_ms),
        "evaluate_1000_fill_with_stub_ms": fill_ms,
        "evaluate_threads": 4,
        "prompt_chars": len(prompt),
        "server_requests": HITS["n"],
    }
    server.shutdown()
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
