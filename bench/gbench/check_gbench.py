#!/usr/bin/python3
"""Checks test_gbench's JSON report: what the C API set reached the library.

  check_gbench.py REPORT.json
"""
import json
import sys

rep = json.load(open(sys.argv[1]))
runs = {b["name"]: b for b in rep["benchmarks"]}
fails = []


def check(name, cond):
    print(("ok - " if cond else "FAIL - ") + name)
    if not cond:
        fails.append(name)


check("context from C", rep["context"].get("from_c") == "yes")
check("Arg(3) run named BM_C_Args/3", "BM_C_Args/3" in runs)
check("Args(4, 5) and Args(6, 7): BM_C_Args2/4/5, BM_C_Args2/6/7",
      "BM_C_Args2/4/5" in runs and "BM_C_Args2/6/7" in runs)
loop = runs.get("BM_C_Loop/real_time", {})
check("UseRealTime: BM_C_Loop/real_time", bool(loop))
check("label from C", loop.get("label") == "c-label")
check("counter 'loops' equals the iterations",
      loop.get("loops") == loop.get("iterations"))
check("rate counter: loops per second",
      loop.get("loop_rate", 0) > loop.get("iterations", 0))
check("items processed", loop.get("items_per_second", 0) > 0)
paused = runs.get("BM_C_Paused/iterations:20/real_time", {})
check("Iterations(20)", paused.get("iterations") == 20)
# 2 ms of sleep per iteration happen with the clock paused.
check("paused time is not counted (%.0f ns per iteration < 1 ms)"
      % paused.get("real_time", -1),
      0 <= paused.get("real_time", 1e9) * {"ns": 1, "us": 1e3, "ms": 1e6}.get(
          paused.get("time_unit", "ns"), 1) < 1e6)
err = runs.get("BM_C_Error", {})
check("SkipWithError from C", err.get("error_occurred") is True and
      err.get("error_message") == "deliberate error from C")
check("Threads(2)", "BM_C_Threads/threads:2" in runs)
print("gbench C API: %d failed" % len(fails))
sys.exit(1 if fails else 0)
