r"""Throughput of the README's multi-host example on CPU, against one process with one and with two devices.

    python scripts/bench_multihost.py [--num_steps=1000] [--job_num_steps=60] [--timeout=300] [--write_notes]

Runs the README's two-process example config (the `--config=` of its `--coordinator_address` command, read from
README.md) three ways, each `python -m jaxgan.main` in its own temporary workdir:
  one_device:    1 process, 1 device;
  two_devices:   1 process, 2 forced host devices (XLA_FLAGS=--xla_force_host_platform_device_count=2);
  two_processes: 2 localhost processes of 1 device each, joined by `--coordinator_address` (jax.distributed,
                 collectives over gloo): the README's command.
For each it prints one JSON line: steps/s from the run's metrics.jsonl (`steps_per_sec` of the logging windows
after the first, whose time includes compilation, combined as steps / seconds), wall time of the subprocess,
and compile time (JAX_LOG_COMPILES: XLA compilation in all, and tracing + lowering + compilation of the train
step, `jit(loop_chunk)`). A run that passes `--timeout` is killed and reported from the windows it logged.

With `--probe` (default) two measurements explain the gap:
  collectives: the train step compiled for 2 devices, its all-reduces counted per update step (loop trip counts
    from the optimised HLO) as ops and as buffers: XLA's CPU runtime runs a tuple all-reduce as one collective
    call per buffer, and with gloo every call is a round trip between the processes;
  gloo: 2 localhost processes timing one all-reduce of one small buffer, of G's gradient (one buffer per leaf)
    and of the same floats as one buffer; the predicted seconds per step are the step's buffers × G's
    per-leaf milliseconds per buffer (a tuple all-reduce like the step's).
`--write_notes` adds the figures to BUILD_NOTES.md as a dated section (block `bench_multihost_DATE`; a rerun on the
same day replaces that day's section).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags

from jaxgan.parallel import with_host_device_count
from scripts.notes import ROOT, replace_block, run_script

_NUM_STEPS = flags.DEFINE_integer("num_steps", 1000, "Update steps of the one-process runs.")
_JOB_NUM_STEPS = flags.DEFINE_integer("job_num_steps", 60, "Update steps of the two-process job (much slower).")
_LOG_EVERY = flags.DEFINE_integer("log_every_steps", 20, "Logging window: steps/s is measured per window.")
_TIMEOUT = flags.DEFINE_integer("timeout", 300, "Seconds per setup before its processes are killed.")
_SETUPS = flags.DEFINE_list("setups", ["one_device", "two_devices", "two_processes"], "Setups to run, in order.")
_PROBE = flags.DEFINE_boolean("probe", True, "Count the step's collectives and time all-reduces over gloo.")
_EXTRA_XLA_FLAGS = flags.DEFINE_string("extra_xla_flags", "", "Appended to XLA_FLAGS of every subprocess.")
_KEEP = flags.DEFINE_boolean("keep", False, "Keep the temporary workdirs (their paths are printed).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Add a dated section with the figures to BUILD_NOTES.md.")
# Internal: the probes run as subprocesses of this script.
_ROLE = flags.DEFINE_enum("role", "bench", ["bench", "count_collectives", "gloo_latency"], "Internal.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "Internal: gloo_latency's process.")
_PORT = flags.DEFINE_integer("port", 0, "Internal: gloo_latency's coordinator port.")
_CONFIG_ARGS = flags.DEFINE_string("config_args", "", "Internal: the config flags of the runs, shell-quoted.")

SETUPS = {  # name: (processes, devices per process, description)
    "one_device": (1, 1, "1 process, 1 device"),
    "two_devices": (1, 2, "1 process, 2 forced host devices"),
    "two_processes": (2, 1, "2 localhost processes (gloo), 1 device each"),
}


def readme_config_args() -> list[str]:
    """The `--config=` and `--config.*` flags of README.md's multi-host command (the one with --coordinator_address)."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if "--coordinator_address" in line and "jaxgan.main" in line:
            return [arg for arg in shlex.split(line) if arg.startswith("--config")]
    raise SystemExit("README.md: no `python -m jaxgan.main ... --coordinator_address` command found")


def run_overrides(num_steps: int) -> list[str]:
    """Short-run cadence: log every window, evaluate and checkpoint only at the end."""
    return [
        f"--config.num_steps={num_steps}",
        f"--config.log_every_steps={_LOG_EVERY.value}",
        f"--config.eval_every_steps={num_steps}",
        f"--config.checkpoint_every_steps={num_steps}",
    ]


def subprocess_env(devices: int) -> dict:
    xla_flags = " ".join([with_host_device_count(os.environ.get("XLA_FLAGS", ""), devices), *_EXTRA_XLA_FLAGS.value.split()])
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags,
        "JAX_LOG_COMPILES": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


_COMPILE_LINE = re.compile(
    r"Finished (tracing|jaxpr to MLIR module conversion|XLA compilation) (.*?) in ([\d.eE+-]+) sec"
)


def compile_seconds(log: str) -> dict:
    """From JAX_LOG_COMPILES lines: XLA compilation of every program, and the train step's trace + lower + compile."""
    total = step = 0.0
    for phase, what, seconds in _COMPILE_LINE.findall(log):
        if phase == "XLA compilation":
            total += float(seconds)
        if "loop_chunk" in what:
            step += float(seconds)
    return {"compile_s": round(total, 2), "train_step_compile_s": round(step, 2) if step else None}


def throughput(metrics_path: pathlib.Path) -> dict:
    """steps/s over the logging windows after the first (steps / seconds over them), and each window's rate."""
    rows = []
    if metrics_path.exists():
        for line in metrics_path.read_text().splitlines():
            record = json.loads(line)
            if "steps_per_sec" in record:
                rows.append((record["step"], record["steps_per_sec"]))
    windows = [(step - previous, rate) for (previous, _), (step, rate) in zip([(0, None), *rows], rows)]
    later = windows[1:]
    seconds = sum(n / rate for n, rate in later if rate > 0)
    return {
        "steps_logged": rows[-1][0] if rows else 0,
        "steps_per_sec": round(sum(n for n, _ in later) / seconds, 3) if seconds else None,
        "first_window_steps_per_sec": round(windows[0][1], 3) if windows else None,
        "window_steps_per_sec": [round(rate, 3) for _, rate in later],
    }


def run_setup(name: str, config_args: list[str], workdirs: list[pathlib.Path]) -> dict:
    processes, devices, description = SETUPS[name]
    num_steps = _JOB_NUM_STEPS.value if processes > 1 else _NUM_STEPS.value
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"bench_multihost_{name}_"))
    workdirs.append(workdir)
    args = [
        sys.executable,
        "-m",
        "jaxgan.main",
        *config_args,
        *run_overrides(num_steps),
        f"--workdir={workdir / 'run'}",
    ]
    if processes > 1:
        port = free_port()
        commands = [
            [*args, f"--coordinator_address=localhost:{port}", f"--num_processes={processes}", f"--process_id={i}"]
            for i in range(processes)
        ]
    else:
        commands = [args]
    load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(open(workdir / f"process_{i}.log", "w+")) for i in range(processes)]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(command, cwd=ROOT, env=subprocess_env(devices), stdout=log, stderr=subprocess.STDOUT)
            for command, log in zip(commands, logs)
        ]
        timed_out = False
        try:
            for proc in procs:
                proc.wait(timeout=max(1.0, _TIMEOUT.value - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # interrupted: leave no training processes behind
            for proc in procs:
                proc.kill()
            raise
        if timed_out:  # kill what is left: the windows logged so far are the measurement
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait()
        wall = time.perf_counter() - start
        texts = []
        for log in logs:
            log.seek(0)
            texts.append(log.read())
    codes = [proc.returncode for proc in procs]
    row = {
        "setup": name,
        "description": description,
        "processes": processes,
        "devices_per_process": devices,
        "num_steps": num_steps,
        **throughput(workdir / "run" / "metrics.jsonl"),
        "wall_s": round(wall, 1),
        **compile_seconds(texts[0]),
        "timed_out": timed_out,
        "returncodes": codes,
        "load_avg_1m_before": round(load, 2),
    }
    if processes > 1:  # the other processes' compile times, to see whether one waits on another's compilation
        row["compile_s_per_process"] = [compile_seconds(text)["compile_s"] for text in texts]
    if not timed_out and any(codes):
        row["error_tail"] = texts[codes.index(next(c for c in codes if c))][-1500:]
    return row


# --- probes ---------------------------------------------------------------------------------------------------------


def _load_config(config_args: list[str]):
    """The runs' config: `get_config()` of the README's `--config=FILE`, with the `--config.KEY=VALUE` overrides."""
    import ast
    import importlib.util

    from jaxgan.config import get_by_path, set_by_path

    config, overrides = None, []
    for arg in config_args:
        key, _, value = arg[2:].partition("=")
        if key == "config":
            spec = importlib.util.spec_from_file_location("bench_config", ROOT / value)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            config = module.get_config()
        else:
            overrides.append((key[len("config.") :], value))
    for key, value in overrides:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        current = get_by_path(config, key)
        set_by_path(config, key, parsed if current is None or isinstance(current, bool) else type(current)(parsed))
    return config


def _shape_bytes(shape: str) -> tuple[int, int]:
    """(buffers, bytes) of an HLO result shape such as `(f32[128]{0}, f32[2,128]{1,0}, f32[])`."""
    sizes = {
        "f64": 8,
        "s64": 8,
        "u64": 8,
        "f32": 4,
        "s32": 4,
        "u32": 4,
        "bf16": 2,
        "f16": 2,
        "s16": 2,
        "u16": 2,
        "s8": 1,
        "u8": 1,
        "pred": 1,
    }
    buffers = total = 0
    for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", shape):
        if dtype in sizes:
            n = 1
            for d in filter(None, dims.split(",")):
                n *= int(d)
            buffers, total = buffers + 1, total + n * sizes[dtype]
    return buffers, total


_COLLECTIVE = re.compile(
    r"=\s*(.*?)\s(all-reduce|all-reduce-start|all-gather|all-gather-start|reduce-scatter|"
    r"collective-permute|collective-permute-start|all-to-all)\("
)


def collectives_per_iteration(hlo: str) -> dict:
    """Collective ops, their buffers and bytes, executed per iteration of the entry computation's outermost loop
    (the dispatch's loop over update steps), with the trip counts XLA knows for inner loops."""
    computations: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo.splitlines():
        header = re.match(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$", line)
        if header and not line.startswith(" "):
            current = header.group(2)
            computations[current] = []
            entry = current if header.group(1) else entry
        elif current is not None:
            computations[current].append(line)
    memo: dict[str, tuple[int, int, int]] = {}

    def count(name: str, outer: bool = False) -> tuple[int, int, int]:
        if name in memo:
            return memo[name]
        ops = buffers = nbytes = 0
        for line in computations.get(name, []):
            match = _COLLECTIVE.search(line)
            if match:
                b, n = _shape_bytes(match.group(1))
                ops, buffers, nbytes = ops + 1, buffers + b, nbytes + n
            callees = []
            if re.search(r"\swhile\(", line):
                body = re.search(r"body=%?([\w.\-]+)", line).group(1)
                trip = re.search(r'"known_trip_count":\{"n":"(\d+)"', line)
                callees.append((body, 1 if outer or trip is None else int(trip.group(1))))
            else:
                for key in ("calls", "true_computation", "false_computation"):
                    callees += [(c, 1) for c in re.findall(rf"\b{key}=%?([\w.\-]+)", line)]
                branches = re.search(r"branch_computations=\{([^}]*)\}", line)
                if branches:
                    callees += [(c.strip().lstrip("%"), 1) for c in branches.group(1).split(",")]
            for callee, times in callees:
                o, b, n = count(callee)
                ops, buffers, nbytes = ops + times * o, buffers + times * b, nbytes + times * n
        memo[name] = (ops, buffers, nbytes)
        return memo[name]

    ops, buffers, nbytes = count(entry, outer=True)  # the entry's while loop is the step loop: one iteration
    return {"all_reduce_ops_per_step": ops, "collective_buffers_per_step": buffers, "collective_bytes_per_step": nbytes}


def count_collectives(config_args: list[str]) -> None:
    """(subprocess, 2 devices) The train step as the runner compiles it, with its collectives per update step."""
    import jax

    from jaxgan.parallel import replicate
    from jaxgan.tasks import make_task
    from jaxgan.train import game_factory, init_state, make_mesh, make_train_chunk, num_runs, swept_hparams, with_hparams
    from jaxgan.updates import make_update_rule

    config = _load_config(config_args)
    task, mesh = make_task(config), make_mesh(config)
    train_game_for = game_factory(config, task, mesh)
    rule_for = lambda hp: make_update_rule(train_game_for(hp), with_hparams(config, hp))
    chunk = make_train_chunk(
        rule_for, task.data.sample, config.batch_size, num_runs(config), mesh, max_steps=config.steps_per_dispatch
    )
    state, hparams = replicate((init_state(config, rule_for({}), task), swept_hparams(config)), mesh)
    hlo = chunk.lower(state, 1, hparams).compile().as_text()
    leaves = [tuple(x.shape) for x in jax.tree.leaves(state.g_params)]
    print(
        json.dumps(
            {
                "probe": "collectives",
                "devices": jax.device_count(),
                **collectives_per_iteration(hlo),
                "g_param_shapes": leaves,
            }
        )
    )


def gloo_latency(process_id: int, port: int, g_shapes: list[list[int]]) -> None:
    """(one of 2 processes) Milliseconds per all-reduce over gloo: one iteration of a compiled loop whose body
    sums arrays sharded over the 2 processes (XLA makes that one tuple all-reduce of one buffer per array)."""
    import math

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", 2, process_id)
    mesh = jax.make_mesh((2,), ("d",), devices=jax.devices())
    split = NamedSharding(mesh, PartitionSpec("d"))

    def time_all_reduce(sizes: list[int], iters: int, repeats: int = 5) -> dict:
        xs = []
        for n in sizes:
            host = np.ones((2, n), np.float32)
            xs.append(jax.make_array_from_callback(host.shape, split, lambda index, host=host: host[index]))

        @jax.jit
        def loop(xs):
            def body(i, acc):
                scale = 1.0 + 1e-6 * i.astype(jnp.float32)
                return acc + sum(jnp.sum(x * scale, axis=0).sum() for x in xs)

            return jax.lax.fori_loop(0, iters, body, jnp.float32(0))

        loop(xs).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            loop(xs).block_until_ready()
            times.append((time.perf_counter() - start) / iters * 1e3)
        times.sort()
        return {
            "buffers": len(sizes),
            "floats": sum(sizes),
            "ms_median": round(times[len(times) // 2], 3),
            "ms_best": round(times[0], 3),
        }

    g_sizes = [math.prod(s) for s in g_shapes] or [50_000]
    out = {
        "probe": "gloo",
        "one_buffer_1k_floats": time_all_reduce([1024], 100),
        "g_gradient_per_leaf": time_all_reduce(g_sizes, 30),
        "g_gradient_one_buffer": time_all_reduce([sum(g_sizes)], 30),
    }
    if process_id == 0:
        print(json.dumps(out), flush=True)
    jax.distributed.shutdown()


def run_probes(config_args: list[str]) -> list[dict]:
    script = [sys.executable, str(pathlib.Path(__file__).resolve()), f"--config_args={shlex.join(config_args)}"]
    out = subprocess.run(
        [*script, "--role=count_collectives"],
        check=False,
        cwd=ROOT,
        env=subprocess_env(2),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT.value,
    )
    if out.returncode:
        return [{"probe": "collectives", "error_tail": out.stderr[-1500:]}]
    collectives = json.loads(out.stdout.strip().splitlines()[-1])
    port = free_port()
    g_shapes = json.dumps(collectives.pop("g_param_shapes"))
    procs = [
        subprocess.Popen(
            [*script, "--role=gloo_latency", f"--process_id={i}", f"--port={port}", "--", g_shapes],
            cwd=ROOT,
            env=subprocess_env(1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    for proc in procs:
        try:
            results.append(proc.communicate(timeout=_TIMEOUT.value))
        except subprocess.TimeoutExpired:
            proc.kill()
            results.append(proc.communicate())
    if procs[0].returncode:
        return [collectives, {"probe": "gloo", "error_tail": results[0][1][-1500:]}]
    gloo = json.loads(results[0][0].strip().splitlines()[-1])
    # The step's all-reduces are tuples, like G's gradient per leaf: its milliseconds per buffer price them.
    per_leaf = gloo["g_gradient_per_leaf"]
    per_buffer = per_leaf["ms_median"] / per_leaf["buffers"]
    collectives["predicted_s_per_step_from_gloo"] = round(
        collectives["collective_buffers_per_step"] * per_buffer / 1e3, 3
    )
    return [collectives, gloo]


# --- notes ----------------------------------------------------------------------------------------------------------


def write_notes(rows: list[dict], probes: list[dict], config_args: list[str]) -> None:
    import jax

    today = datetime.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}"
    command = (
        f"python scripts/bench_multihost.py --num_steps={_NUM_STEPS.value} --job_num_steps={_JOB_NUM_STEPS.value} "
        f"--log_every_steps={_LOG_EVERY.value} --write_notes"
    )
    lines = [
        f"### CPU multi-host throughput ({today})",
        "",
        (
            f"`{command}` on {machine}; the README's multi-host example (`{' '.join(config_args)}`). steps/s: logging "
            f"windows of {_LOG_EVERY.value} steps after the first (which compiles); compile: XLA compilation in "
            "process 0, and the train step's trace + lower + compile."
        ),
        "",
        "| setup | steps | steps/s | wall s | compile s (all, train step) | load (1 min) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rate = "—" if r["steps_per_sec"] is None else f"{r['steps_per_sec']:.2f}"
        status = " (timed out)" if r["timed_out"] else (" (failed)" if any(r["returncodes"]) else "")
        lines.append(
            f"| {r['description']}{status} | {r['steps_logged']}/{r['num_steps']} | {rate} | {r['wall_s']:.0f} | "
            f"{r['compile_s']:.1f}, {r['train_step_compile_s'] or 0:.1f} | {r['load_avg_1m_before']:.1f} |"
        )
    for p in probes:
        if p.get("probe") == "collectives" and "error_tail" not in p:
            lines += [
                "",
                (
                    f"Per update step the 2-device program runs {p['all_reduce_ops_per_step']} all-reduces of "
                    f"{p['collective_buffers_per_step']} buffers ({p['collective_bytes_per_step'] / 1024:.0f} KiB); "
                    "XLA's CPU runtime makes one collective call per buffer."
                ),
            ]
        if p.get("probe") == "gloo" and "error_tail" not in p:
            a, b, c = p["one_buffer_1k_floats"], p["g_gradient_per_leaf"], p["g_gradient_one_buffer"]
            lines.append(
                f"One all-reduce over gloo between the 2 processes (median ms): 1 buffer of 1k floats "
                f"{a['ms_median']}, G's gradient as {b['buffers']} buffers {b['ms_median']}, the same "
                f"{c['floats']} floats as 1 buffer {c['ms_median']}."
            )
    collectives = next((p for p in probes if "predicted_s_per_step_from_gloo" in p), None)
    if collectives:
        lines.append(
            f"Buffers per step × G's per-leaf ms per buffer predicts {collectives['predicted_s_per_step_from_gloo']} s "
            "per step for the two-process job."
        )
    replace_block(ROOT / "BUILD_NOTES.md", f"bench_multihost_{today}", "\n".join(lines))


def main(argv):
    if _ROLE.value == "count_collectives":
        count_collectives(shlex.split(_CONFIG_ARGS.value))
        return
    if _ROLE.value == "gloo_latency":
        gloo_latency(_PROCESS_ID.value, _PORT.value, json.loads(argv[1]) if len(argv) > 1 else [])
        return
    unknown = [s for s in _SETUPS.value if s not in SETUPS]
    if unknown:
        raise app.UsageError(f"--setups: unknown {unknown}; choose from {list(SETUPS)}")
    config_args = readme_config_args()
    print(json.dumps({"config_args": config_args, "cpu_cores": os.cpu_count()}), flush=True)
    rows, workdirs = [], []
    try:
        for name in _SETUPS.value:
            row = run_setup(name, config_args, workdirs)
            rows.append(row)
            print(json.dumps(row), flush=True)
        probes = run_probes([*config_args, *run_overrides(_JOB_NUM_STEPS.value)]) if _PROBE.value else []
        for probe in probes:
            print(json.dumps(probe), flush=True)
    finally:
        for workdir in workdirs:
            if _KEEP.value:
                print(json.dumps({"kept_workdir": str(workdir)}), flush=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if _WRITE_NOTES.value:
        write_notes(rows, probes, config_args)


if __name__ == "__main__":
    run_script(main)
