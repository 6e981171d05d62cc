"""Benchmark C, peer: llama.cpp's own llama-server on the same model and prompts.

Starts bench/out/llama-server/bin/llama-server on 127.0.0.1 with 4 parallel
slots (-np 4) and an 8192-token context (-c 8192), the same threads and batch
sizes as the in-process engine (-t/-tb, -b 512 -ub 512), then sends the
prompts written by the lm_local example (bench/out/lm_prompts.json) to
/completion, 1 or 4 at a time, greedy (temperature 0), n_predict = max_tokens.
Stops the server at the end.

Usage: python bench/lm_server.py --out bench/out/lm_server.json [--threads 2]
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(url, body, timeout=600):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "bench/out/llama-server/bin/llama-server"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--prompts", default=os.path.join(ROOT, "bench/out/lm_prompts.json"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()

    spec = json.load(open(a.prompts))
    max_tokens = spec["max_tokens"]
    port = free_port()
    log = open(os.path.join(os.path.dirname(os.path.abspath(a.out)), "llama-server.log"), "w")
    cmd = [
        a.bin, "-m", a.model, "--host", "127.0.0.1", "--port", str(port),
        "-c", "8192", "-np", "4", "-t", str(a.threads), "-tb", str(a.threads),
        "-b", "512", "-ub", "512",
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"llama-server exited with {proc.returncode}; see llama-server.log")
            time.sleep(0.2)
        load_secs = time.perf_counter() - t

        def complete(prompt):
            return post(
                base + "/completion",
                {
                    "prompt": prompt,
                    "n_predict": max_tokens,
                    "temperature": 0.0,
                    "cache_prompt": True,
                    "stream": False,
                },
            )

        complete("Hello")  # warm-up, like the Rust side
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for name, trials in spec["workloads"].items():
                rows = []
                for trial, prompts in enumerate(trials):
                    start = time.perf_counter()
                    outs = list(pool.map(complete, prompts))
                    secs = time.perf_counter() - start
                    completion = sum(o["tokens_predicted"] for o in outs)
                    prompt_toks = sum(o["tokens_evaluated"] for o in outs)
                    prefilled = sum(o.get("timings", {}).get("prompt_n", 0) for o in outs)
                    print(f"{name} trial {trial}: {completion} tokens in {secs:.2f}s = {completion / secs:.1f} tok/s")
                    rows.append(
                        {
                            "trial": trial,
                            "wall_secs": secs,
                            "completion_tokens": completion,
                            "prompt_tokens": prompt_toks,
                            "prefilled_tokens": prefilled,
                            "tokens_per_sec": completion / secs,
                        }
                    )
                results[name] = rows
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    res = {
        "benchmark": "lm_local",
        "side": "llama-server",
        "command": " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd),
        "model": os.path.relpath(a.model, ROOT),
        "max_tokens": max_tokens,
        "threads": a.threads,
        "load_secs": load_secs,
        "loadavg": open("/proc/loadavg").read().strip(),
        "workloads": results,
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
