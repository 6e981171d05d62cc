"""Benchmark C: our in-process `local` provider vs llama.cpp's own llama-server.

Both sides get the same prompts (written by the lm_local example), greedy
decoding and max_tokens new tokens. llama-server runs on 127.0.0.1 with 4
parallel slots (-np 4), an 8192-token context (-c 8192) and the same threads
and batch sizes as the in-process engine (-t/-tb, -b 512 -ub 512); requests
go to /completion, 1 or 4 at a time.

The two sides alternate trial by trial (ours then server, then server then
ours), and each trial waits (bounded) for the machine to be idle first: on a
shared 2-core machine another process's inference would otherwise decide the
result. The idle share measured just before each trial is recorded.

Writes bench/out/lm_local.json (ours) and bench/out/lm_server.json (server).

Usage: python bench/lm_compare.py [--trials 3] [--threads 2] [--max-wait 60]
"""

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = ("single", "concurrent4", "shared_prefix4")


def cpu_idle(seconds=1.0):
    def snap():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return f[3] + f[4], sum(f)

    i0, t0 = snap()
    time.sleep(seconds)
    i1, t1 = snap()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_wait, want=0.85):
    """Waits until the machine is at least `want` idle, at most max_wait seconds."""
    start = time.time()
    idle = cpu_idle()
    while idle < want and time.time() - start < max_wait:
        time.sleep(2)
        idle = cpu_idle()
    return idle


def stat_ticks():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)  # busy, total (all CPUs, clock ticks)


def proc_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime


def children_ticks():
    t = os.times()
    return round((t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(url, body, timeout=900):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def main():
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--wait-quiet-only":
        idle = wait_quiet(float(sys.argv[2]))
        print(f"machine {idle:.0%} idle")
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench/out"))
    ap.add_argument("--example", default=os.path.join(ROOT, "bench/out/bin/lm_local"))
    ap.add_argument("--server", default=os.path.join(ROOT, "bench/out/llama-server/bin/llama-server"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-wait", type=float, default=60, help="seconds to wait for an idle machine per trial")
    a = ap.parse_args()
    os.chdir(ROOT)
    prompts_file = os.path.join(a.out_dir, "lm_prompts.json")
    subprocess.run(
        [a.example, "--write-prompts", prompts_file, "--trials", str(a.trials), "--max-tokens", str(a.max_tokens)],
        check=True,
    )
    spec = json.load(open(prompts_file))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        a.server, "-m", a.model, "--host", "127.0.0.1", "--port", str(port),
        "-c", "8192", "-np", "4", "-t", str(a.threads), "-tb", str(a.threads), "-b", "512", "-ub", "512",
    ]
    log = open(os.path.join(a.out_dir, "llama-server.log"), "w")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    ours = {w: [] for w in WORKLOADS}
    srv = {w: [] for w in WORKLOADS}
    ours_meta = {}
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"llama-server exited with {proc.returncode}; see llama-server.log")
            if time.perf_counter() - t > 300:
                raise SystemExit("llama-server did not become healthy in 300 s")
            time.sleep(0.2)
        server_load_secs = time.perf_counter() - t

        def complete(prompt):
            return post(
                base + "/completion",
                {"prompt": prompt, "n_predict": spec["max_tokens"], "temperature": 0.0, "cache_prompt": True, "stream": False},
            )

        complete("Hello")  # warm-up, as the Rust side does
        pool = ThreadPoolExecutor(max_workers=4)

        def run_server(w, trial):
            prompts = spec["workloads"][w][trial]
            start = time.perf_counter()
            outs = list(pool.map(complete, prompts))
            secs = time.perf_counter() - start
            completion = sum(o["tokens_predicted"] for o in outs)
            return {
                "trial": trial,
                "wall_secs": secs,
                "completion_tokens": completion,
                "prompt_tokens": sum(o["tokens_evaluated"] for o in outs),
                "prefilled_tokens": sum(o.get("timings", {}).get("prompt_n", 0) for o in outs),
                "tokens_per_sec": completion / secs,
            }

        def run_ours(w, trial):
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                out = f.name
            subprocess.run(
                [a.example, "--prompts", prompts_file, "--workload", w, "--trial", str(trial),
                 "--threads", str(a.threads), "--model", a.model, "--out", out],
                check=True, stderr=subprocess.DEVNULL,
            )
            r = json.load(open(out))
            os.remove(out)
            ours_meta.update({k: r[k] for k in ("model", "max_tokens", "threads", "max_sequences", "load_secs")})
            return r["workloads"][w][0]

        for trial in range(a.trials):
            for w in WORKLOADS:
                order = [("ours", run_ours), ("server", run_server)]
                if trial % 2 == 1:
                    order.reverse()
                for side, fn in order:
                    idle = wait_quiet(a.max_wait)
                    own0 = children_ticks() if side == "ours" else proc_ticks(proc.pid)
                    busy0, total0 = stat_ticks()
                    row = fn(w, trial)
                    busy1, total1 = stat_ticks()
                    own1 = children_ticks() if side == "ours" else proc_ticks(proc.pid)
                    row["idle_before"] = idle
                    # Share of the machine's CPU time used by other processes during the trial.
                    row["interference"] = max(0, (busy1 - busy0) - (own1 - own0)) / max(1, total1 - total0)
                    (ours if side == "ours" else srv)[w].append(row)
                    print(f"{side:6} {w:15} trial {trial}: {row['completion_tokens']} tokens in "
                          f"{row['wall_secs']:.2f}s = {row['tokens_per_sec']:.1f} tok/s (idle before {idle:.0%}, others used {row['interference']:.0%})", flush=True)
        pool.shutdown()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    loadavg = open("/proc/loadavg").read().strip()
    rel = lambda p: os.path.relpath(p, ROOT) if os.path.isabs(p) else p
    json.dump(
        {"benchmark": "lm_local", "side": "ours", **ours_meta, "model": rel(a.model), "loadavg": loadavg, "workloads": ours},
        open(os.path.join(a.out_dir, "lm_local.json"), "w"),
        indent=2,
    )
    json.dump(
        {
            "benchmark": "lm_local",
            "side": "llama-server",
            "command": " ".join(rel(c) for c in cmd),
            "model": rel(a.model),
            "max_tokens": spec["max_tokens"],
            "threads": a.threads,
            "load_secs": server_load_secs,
            "loadavg": loadavg,
            "workloads": srv,
        },
        open(os.path.join(a.out_dir, "lm_server.json"), "w"),
        indent=2,
    )
    print("wrote lm_local.json and lm_server.json")


if __name__ == "__main__":
    main()
