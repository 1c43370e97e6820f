r"""Metz et al. 2016, Figure 1: the ring of 8 at the paper's setting with K = 0 and K = 10, over seeds.

    python scripts/reproduce_unrolled_ring.py [--seeds=10] [--workdir=runs/unrolled_ring] [--write_notes] \
        [--config.KEY=VALUE ...]

This is `scripts/reproduce_mixture_tables.py` with other defaults: `experiments/ring8.py` (Adam 1e-4, β1 0.5,
K = 10 on one minibatch), the methods `k0,k10`, each K's seeds trained together as one vmapped program in its own
resumable workdir, and the table and figure under the name `unrolled_ring` (docs/figures/unrolled_ring.png, the
`unrolled_ring` block of BUILD_NOTES.md and README.md with --write_notes). Any flag of that script may be given.
"""

from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULTS = [
    f"--config={ROOT / 'experiments/ring8.py'}",
    "--methods=k0,k10",
    "--block=unrolled_ring",
    "--workdir=runs/unrolled_ring",
]

if __name__ == "__main__":
    given = {arg.split("=")[0] for arg in sys.argv[1:]}
    defaults = [flag for flag in DEFAULTS if flag.split("=")[0] not in given]
    script = str(ROOT / "scripts/reproduce_mixture_tables.py")
    if {flag.lstrip("-") for flag in given} & {"help", "h", "?", "helpshort", "helpfull"}:  # that script's help shows its own defaults
        print(f"{__doc__}\nIt runs scripts/reproduce_mixture_tables.py {' '.join(defaults)}; that script's help:\n", flush=True)
    os.execv(sys.executable, [sys.executable, script, *defaults, *sys.argv[1:]])
