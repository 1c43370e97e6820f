#!/usr/bin/env bash
# The demo: an unrolled GAN (K = 10) on the ring of 8 Gaussians, writing samples.png, metrics.jsonl, eval.json,
# TensorBoard events and checkpoints into runs/demo. About two minutes on a 2-core CPU after the first set-up.
# Run it again to resume (or, once finished, to re-evaluate); delete runs/demo to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
exec python -m jaxgan.main --config=experiments/ring8_lr1e3.py --workdir="${1:-runs/demo}" \
  --config.num_steps=6000 --config.checkpoint_every_steps=1000
