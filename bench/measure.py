"""Runs one benchmark step and records how busy the rest of the machine was.

    python3 bench/measure.py NAME [--wait-quiet SECONDS] -- COMMAND [ARGS...]

First waits (at most SECONDS) for the machine to be at least 85% idle, then
runs COMMAND and writes bench/out/load/NAME.json with the share of the
machine's CPU time that *other* processes used while it ran (all CPU time
minus the command's own, over the wall time of all CPUs). 0% means a clean
measurement; on a shared 2-core machine it rarely is, so the report prints it
next to each figure. Exits with the command's exit code.
"""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stat_ticks():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)  # busy, total over all CPUs (clock ticks)


def cpu_idle(seconds=1.0):
    b0, t0 = stat_ticks()
    time.sleep(seconds)
    b1, t1 = stat_ticks()
    return 1 - (b1 - b0) / max(1, t1 - t0)


def wait_quiet(max_wait, want=0.85):
    start = time.time()
    idle = cpu_idle()
    while idle < want and time.time() - start < max_wait:
        time.sleep(2)
        idle = cpu_idle()
    return idle


def main():
    args = sys.argv[1:]
    if "--" not in args or not args:
        raise SystemExit(__doc__)
    sep = args.index("--")
    head, cmd = args[:sep], args[sep + 1 :]
    name = head[0]
    max_wait = float(head[head.index("--wait-quiet") + 1]) if "--wait-quiet" in head else 0.0
    idle = wait_quiet(max_wait) if max_wait > 0 else cpu_idle()
    print(f"[{name}] machine {idle:.0%} idle before the step", flush=True)
    busy0, total0 = stat_ticks()
    own0 = os.times()
    wall0 = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - wall0
    own1 = os.times()
    busy1, total1 = stat_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    own = ((own1.children_user + own1.children_system) - (own0.children_user + own0.children_system)) * hz
    others = max(0.0, (busy1 - busy0) - own) / max(1, total1 - total0)
    out = os.path.join(ROOT, "bench/out/load")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(
            {"step": name, "idle_before": idle, "others_cpu_share": others, "wall_secs": wall, "exit_code": rc},
            f,
            indent=2,
        )
    print(f"[{name}] other processes used {others:.0%} of the machine's CPU during the step", flush=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
