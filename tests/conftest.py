import os
import sys

# Tests run on the CPU; a few multi-device tests ask for more host devices themselves in subprocesses.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
