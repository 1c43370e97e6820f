import collections
import os
import sys
import tempfile

# Tests run on the CPU; a few multi-device tests ask for more host devices themselves in subprocesses.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One on-disk XLA compilation cache for every test process and the subprocesses they start (the environment is
# inherited): many tests compile the same programs (a run and its resumed twin, the same step in several files),
# and compiling dominates the suite's time on a CPU. A cached program is the same executable, so no number changes;
# the key holds the program, the backend, the jax version and XLA_FLAGS.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"jaxgan-tests-xla-cache-{getattr(os, 'getuid', lambda: 0)()}"))
# Only programs that took a second or more to compile: caching every small one (thousands in a run) made each write
# scan a directory of tens of thousands of entries under the cache's lock, and the suite slower, not faster.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
# A size limit turns on the cache's file lock (and least-recently-used eviction): test processes run side by side.
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))
# XLA's CPU backend without LLVM's optimization passes: a test runs each program for a few steps, so compiling
# dominates, and -O0 compiles about 30% faster (the unrolled DCGAN step: 10.1 s -> 7.2 s) while running it about 3x
# slower (12 ms -> 42 ms). It gives other bits than the default, so every process of a test must have it (inherited,
# and test_parallel.py keeps it beside the device count); set XLA_FLAGS with its own level to test the default.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The slowest test files, slowest first (seconds of their tests ≥ 9 s each, in one run of the whole suite on the
# 2-core CPU, second 2026-12-07 session). scripts/test.sh gives each worker whole files in this order
# (--no-loadscope-reorder): started last, as xdist's default order by test count did (few tests each), one of them
# could keep one worker busy for minutes after the other had run out of files.
_SLOWEST_FILES = (
    "test_stylegan_runs.py", "test_parallel.py", "test_image_runs.py", "test_train.py", "test_model_state_rules.py",
    "test_conditioning.py", "test_branch.py", "test_recount_stacked_modes.py", "test_progressive_runs.py",
    "test_truncation_curve.py",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """The files of `_SLOWEST_FILES` first, in its order, then the others by their number of tests (xdist's default
    order); each file's tests keep their own order."""
    counts = collections.Counter(item.path.name for item in items)
    rank = {name: i for i, name in enumerate(_SLOWEST_FILES)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -counts[item.path.name], str(item.path)))
