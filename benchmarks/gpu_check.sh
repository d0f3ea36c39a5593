#!/usr/bin/env bash
# The GPU checks in one script, under 8 minutes on one H100. From the repository root:
#   bash benchmarks/gpu_check.sh [out-dir]
# It prints, each step bounded in time (the whole script by GPU_CHECK_BUDGET_S):
#   1. the default job (early stopping off, GPU_CHECK_EPOCHS epochs) on the device:
#      fp32 eager, bf16, trainer.compile=true, bf16 + compile; loop time, steady epoch
#      time (after the first two epochs, so without compiling) and each against fp32 eager
#   2. GPU_CHECK_SEEDS seeds as one sweep: hydra/launcher=batched against the basic
#      launcher's solo runs, whole processes (benchmarks/replicas_speed.py), target >= 20x
#   3. on a GPU, with the time left: tests/run/test_gpu.py
# A machine without Hydra (a lent GPU machine's image) installs it from .wheels/:
#   python -m pip wheel --no-deps -w .wheels hydra-core omegaconf antlr4-python3-runtime==4.9.3 mnist1d
# Rehearse the script's logic on a CPU with tiny sizes:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SEEDS=4 GPU_CHECK_EPOCHS=3 \
#     GPU_CHECK_EXTRA="data.n_samples=600 model.width=32" bash benchmarks/gpu_check.sh
set -euo pipefail

device=${GPU_CHECK_DEVICE:-cuda}
seeds=${GPU_CHECK_SEEDS:-64}
epochs=${GPU_CHECK_EPOCHS:-30}
sweep_epochs=${GPU_CHECK_SWEEP_EPOCHS:-20}
extra=${GPU_CHECK_EXTRA:-}  # more overrides for every job, split on spaces
budget=${GPU_CHECK_BUDGET_S:-450}  # the whole script; each step gets at most what is left
out=$(mkdir -p "${1:-/tmp/gpu_check}" && cd "${1:-/tmp/gpu_check}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
failed=()
# $out/site: where the environment step installs .wheels/ when Hydra is missing
export PYTHONPATH=$root:$out/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export DLRUN_CACHE=${DLRUN_CACHE:-$out/cache} PYTHONWARNINGS=ignore

left() { echo $((budget - ($(date +%s) - start))); }

# step [--always] NAME LIMIT_S COMMAND...: run COMMAND under a time limit (never past the
# budget, unless --always: a quick step that must report what earlier steps left), say how
# it ended; a failed step is reported and the script goes on to the next one.
step() {
  local always=0
  if [[ $1 == --always ]]; then always=1 && shift; fi
  local name=$1 limit=$2
  shift 2
  local remaining
  remaining=$(left)
  if ((limit > remaining && !always)); then limit=$remaining; fi
  if ((limit < 10)); then
    echo "!! $name: skipped, the ${budget} s budget is spent"
    failed+=("$name (no time left)")
    return 0
  fi
  echo "== $name (at most ${limit} s)"
  local t0 rc=0
  t0=$(date +%s)
  # a fresh bash runs the step's function (timeout runs programs, not functions)
  timeout --kill-after=10 "$limit" bash -euo pipefail -c '"$@"' "$name" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "!! $name: stopped at its ${limit} s limit"
    failed+=("$name (time limit)")
  elif ((rc != 0)); then
    echo "!! $name: failed with exit code $rc"
    failed+=("$name (exit $rc)")
  else
    echo "   ($name took $(($(date +%s) - t0)) s)"
  fi
}

environment() {
  if ! python3 -c "import hydra, omegaconf, mnist1d" 2>/dev/null; then
    if [[ ! -d $root/.wheels ]]; then
      echo "Hydra or mnist1d is missing and there is no .wheels/ to install them from:"
      echo "  python -m pip wheel --no-deps -w .wheels hydra-core omegaconf antlr4-python3-runtime==4.9.3 mnist1d"
      return 2
    fi
    python3 -m pip install -q --no-index --no-deps --target "$out/site" "$root"/.wheels/*.whl
  fi
  python3 - "$device" <<'PY'
import os, platform, sys
import torch
device = sys.argv[1]
gpu = torch.cuda.get_device_name() if device.startswith("cuda") else "no GPU (device=%s)" % device
print(f"{platform.node()}: {gpu}; torch {torch.__version__}; {os.cpu_count()} CPUs; "
      f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}")
PY
}

# one_job NAME OVERRIDES...: the default job in its own folder under $out/jobs/NAME
one_job() {
  local name=$1
  shift
  mkdir -p "$out/jobs/$name"
  # shellcheck disable=SC2086  # $extra: several overrides
  (cd "$out/jobs/$name" && python3 -m dlrun train "device=$device" trainer.progress=false \
    trainer.early_stopping.patience=null "trainer.epochs=$epochs" $extra "$@" | tail -n 3)
}

# compare: each job's loop and steady epoch time, against fp32 eager
compare() {
  python3 - "$out/jobs" <<'PY'
import csv, json, sys
from pathlib import Path
jobs = Path(sys.argv[1])
rows = {}
for name in ("fp32_eager", "bf16", "compile", "bf16_compile"):
    found = sorted(jobs.glob(f"{name}/outputs/runs/*/*/summary.json"))
    if not found:
        print(f"  {name:<13} no run folder (the step failed)")
        continue
    s = json.loads(found[-1].read_text())
    times = [float(r["time_s"]) for r in csv.DictReader(open(found[-1].parent / "metrics.csv"))]
    steady = (times[-1] - times[1]) / (len(times) - 2) if len(times) > 2 else float("nan")
    rows[name] = (s["wall_s"], steady, s.get("test_acc"), s["device"], s["epochs_run"])
base = rows.get("fp32_eager")
for name, (wall, steady, acc, device, n) in rows.items():
    vs = f"; fp32 eager / this: loop {base[0] / wall:.3g}x, epoch {base[1] / steady:.3g}x" if base else ""
    print(f"  {name:<13} {device}: {n} epochs, loop {wall:7.2f} s, steady epoch "
          f"{steady * 1e3:8.2f} ms, test_acc {acc:.4f}{vs}")
PY
}

seed_sweep() {
  # shellcheck disable=SC2086  # $extra: several overrides
  (cd "$root/benchmarks" && python3 replicas_speed.py --device "$device" --seeds "$seeds" \
    --epochs "$sweep_epochs" --repeats 1 --no-warmup $extra)
  echo "  (target: at least 20x with 64 seeds on one GPU)"
}

export device seeds epochs sweep_epochs extra out root
export -f environment one_job compare seed_sweep

echo "gpu_check: device=$device, $epochs epochs per job, $seeds seeds x $sweep_epochs epochs " \
  "in the sweep, budget ${budget} s, output in $out"
step "environment" 120 environment
step "warm-up: one epoch (data cache, CUDA context)" 120 one_job warmup trainer.epochs=1
step "default job, fp32 eager" 90 one_job fp32_eager
step "default job, bf16" 90 one_job bf16 trainer.precision=bf16
step "default job, trainer.compile=true" 150 one_job compile trainer.compile=true
step "default job, bf16 + compile" 150 one_job bf16_compile trainer.precision=bf16 trainer.compile=true
step --always "the default job, compared" 30 compare
step "$seeds seeds: batched against solo runs" 330 seed_sweep
if [[ $device == cuda* ]]; then
  step "GPU tests (tests/run/test_gpu.py)" 90 python3 -m pytest -q -p no:cacheprovider \
    "$root/tests/run/test_gpu.py"
fi

echo "gpu_check: done in $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  printf '!! failed: %s\n' "${failed[@]}"
  exit 1
fi
