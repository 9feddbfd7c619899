#!/usr/bin/env bash
# Issue 15's device measurements, in one script with three parts (one device `run` is <= 10 min,
# so the two device parts are two calls; budget: ~1.5 min start + ~5 min bench + ~9 min train).
#
#   1. here, on the CPU machine, once (needs pip and ../shared):
#        bash benchmarks/gpu/run_issue15.sh prepare
#      -> .issue15/ (ignored via .git/info/exclude): wheels the device image lacks (hydra-core,
#         omegaconf, antlr4 4.9.3) and the Set5 HR images for validation.
#   2. device call 1 (carry [".issue15"], timeout_s 600; the parts have their own timeouts):
#        bash benchmarks/gpu/run_issue15.sh bench
#      -> $OUT/train_step_gpu.{json,md}   (a) BasicSR-style loop, (b) lit default, (c) fast path;
#         $OUT/train_numerics_gpu.{json,md} 300 iterations fast vs plain fp32, both stages.
#   3. device call 2 (carry [".issue15"], timeout_s 600):
#        bash benchmarks/gpu/run_issue15.sh train
#      -> experiment=psnr_pretrain data=sample trainer=gpu_fast for TRAIN_MIN minutes (default 7:
#         8 does not fit one call with the resume and export), Set5 validation every VAL_EVERY
#         steps, checkpoint, resume from last.ckpt for one more minute, ONNX export + verify;
#         $OUT/psnr_curve.{json,md} (Set5 PSNR-Y vs wall time), $OUT/train_log.txt.
#   Then copy $OUT's train_step_gpu.json/.md into benchmarks/results/ and fill in the results .md.
#
# Env: COMPILE=1 also times lit_fast_compile (torch.compile: minutes of compilation, untested);
# LOCAL_CPU=1 runs the train part on CPU with a tiny generator (a dry run of the commands);
# PY=/path/to/python picks the interpreter (prepare needs one with pip).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/issue15_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}

setup_env() {
  if [ -d .issue15/whl ] && ls .issue15/whl/*.whl > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/issue15_site .issue15/whl/*.whl
    export PYTHONPATH=/tmp/issue15_site:$ROOT/src:$ROOT/benchmarks/gpu
  else
    export PYTHONPATH=$ROOT/src:$ROOT/benchmarks/gpu:${PYTHONPATH:-}
  fi
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv || true
}

copy_set5() {  # into .issue15/, which git must ignore (it is carried, never committed)
  excl=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$excl")"
  grep -qx '/.issue15/' "$excl" 2> /dev/null || echo '/.issue15/' >> "$excl"
  mkdir -p .issue15/Set5
  cp ../shared/data/benchmarks/Set5/*.png .issue15/Set5/
}

case "${1:-}" in
prepare)
  copy_set5
  mkdir -p .issue15/whl
  pip=("$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12
    --implementation cp --platform manylinux2014_x86_64 --platform any -d .issue15/whl)
  "${pip[@]}" hydra-core==1.3.2 omegaconf==2.3.0
  "$PY" -m pip wheel --no-deps -w .issue15/whl antlr4-python3-runtime==4.9.3  # sdist only
  du -sh .issue15
  ;;
bench)
  setup_env
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no GPU'"
  timeout 290 "$PY" benchmarks/bench_train_step_gpu.py --json "$OUT/train_step_gpu.json" \
    ${COMPILE:+--compile} || echo "bench_train_step_gpu: exit $?"
  timeout 270 "$PY" benchmarks/bench_train_numerics.py --device cuda --iters 300 \
    --out "$OUT/train_numerics_gpu.json" || echo "bench_train_numerics: exit $?"
  ;;
train)
  setup_env
  MIN=${TRAIN_MIN:-7}
  RUN=/tmp/issue15_run
  rm -rf "$RUN"
  common=(experiment=psnr_pretrain data=sample "paths.data_dir=/tmp/issue15_data"
    "hydra.run.dir=$RUN" logger=csv "data.val_sets.Set5={hr:$ROOT/.issue15/Set5,lr:null}"
    "trainer.val_check_interval=${VAL_EVERY:-500}" "+callbacks.wallclock._target_=issue15_wallclock.WallClock"
    "callbacks.model_checkpoint.every_n_train_steps=${VAL_EVERY:-500}")
  if [ -n "${LOCAL_CPU:-}" ]; then
    common+=(trainer=cpu model.generator.num_block=1 model.generator.num_feat=8
      model.generator.num_grow_ch=4 data.batch_size=2 data.gt_size=32 trainer.val_check_interval=5)
    [ -d .issue15/Set5 ] || copy_set5
  else
    common+=(trainer=gpu_fast data.num_workers=16 data.persistent_workers=true)
  fi
  set -o pipefail
  { "$PY" -m esrgan_lit.train "${common[@]}" "+trainer.max_time=00:00:0$MIN:00" \
    && cp -r "$RUN/csv" "$RUN/csv_part1" && echo "== resume from last.ckpt" \
    && "$PY" -m esrgan_lit.train "${common[@]}" resume=latest "+trainer.max_time=00:00:0$((MIN + 1)):00" \
    && echo "== export" \
    && "$PY" -m esrgan_lit.export "$OUT/generator.onnx" --model "$RUN/generator.safetensors" \
      --format onnx --verify; } 2>&1 | tee "$OUT/train_log.txt" | grep -v "it/s]" || echo "train: exit $?"
  "$PY" benchmarks/gpu/psnr_curve.py "$RUN" "$OUT/psnr_curve.json" || true
  cp "$RUN"/metrics.json "$OUT/" 2> /dev/null || true
  ls -la "$RUN" "$RUN/checkpoints" 2>&1 | tail -12
  rm -f "$OUT/generator.onnx"  # large; its verification is in train_log.txt
  ;;
*)
  echo "usage: $0 prepare|bench|train" >&2
  exit 2
  ;;
esac
