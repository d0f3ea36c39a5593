#!/usr/bin/env bash
# The GPU checks, in one script for a lent CUDA machine (its image has torch but
# not Hydra: carry wheels in .wheels/, see benchmarks/README.md). From the repo root:
#   bash benchmarks/gpu_check.sh [out-dir]
set -u
out=${1:-/tmp/gpu_check}; mkdir -p "$out"
python3 -m pip install -q --no-index --find-links .wheels hydra-core omegaconf mnist1d antlr4-python3-runtime 2>&1 | tail -1
export PYTHONPATH=$PWD DLRUN_CACHE=/tmp/dlrun-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
root=$PWD; job=$(mktemp -d); cd "$job"
echo "== default job, device=cuda (first run generates MNIST-1D)"
/usr/bin/time -f "wall %e s" python3 -m dlrun train device=cuda trainer.progress=false 2>&1 | tail -2
echo "== default job again, device=cuda, seeds 1-2"
for s in 1 2; do
  /usr/bin/time -f "wall %e s" python3 -m dlrun train device=cuda trainer.progress=false seed=$s 2>&1 | tail -1
done
python3 - <<'PY'
import json, pathlib
for p in sorted(pathlib.Path("outputs/runs").rglob("summary.json")):
    s = json.loads(p.read_text())
    print(p.parent.name, s["device"], s["status"], "test_acc=%.4f" % s["test_acc"], "wall_s=%.2f" % s["wall_s"], "epochs=%d" % s["epochs_run"])
PY
cp -r outputs "$out/" 2>/dev/null
cd "$root"
echo "== loop overhead, cuda"; python3 benchmarks/loop_overhead.py --device cuda --epochs 40 --repeats 5 2>&1 | grep -v "^dlrun:"
echo "== loop overhead, cpu (this machine's cores)"; python3 benchmarks/loop_overhead.py --device cpu --epochs 20 --repeats 3 2>&1 | grep -v "^dlrun:"
echo "== GPU tests"; python3 -m pytest -q -p no:cacheprovider tests/run/test_gpu.py tests/run/test_train.py 2>&1 | tail -3
