#!/usr/bin/env python3
"""Benchmark suite: Strider against onnxruntime on the ConvTranspose anchor configs.

Reads the configs (14 single ConvTranspose layers and the DCGAN generator, see the file's "_doc"),
generates seeded weights and inputs with numpy, and writes each config twice with identical data: an
ONNX model (opset 17) and a Strider RON model whose initializers are `Npy("...")` files.

Correctness: runs the ONNX model in onnxruntime and the RON model with `strider run`, and compares
the outputs (|strider - ort| <= atol + rtol * |ort|; the max abs error is reported). With
--check-lowerings, also each lowering (`strider optimize --strategy S` run with `strider run`); each
comparison counts as one check.

Timing, interleaved: for each config and each round, onnxruntime with 1 thread, then with 2 threads
(K timed runs each; 2 warm-up runs in the first round), then `strider bench --json --threads T` for
each T (every variant: none, zero-insert, sparse-matmul, col2im, subpixel, matmul, and auto/cpu — the
graph `strider optimize` writes by default, one lowering per node). Every per-run time
is kept; the tables show medians over all rounds, the best Strider variant and its ratio to
onnxruntime (below 1: Strider is faster).

Variants whose FLOPs (from `strider explore`) exceed --max-flops-ratio times the original graph's are
not timed (zero-insert on FCN-32s would take ~40 s per run); they show as "—" with the reason below
the table. Pass --max-flops-ratio 0 to time everything.

Usage (installs onnx, onnxruntime and numpy from PyPI into a private virtual environment):
    python3 tests/bench/suite.py [--only NAME]... [--rounds R] [--runs K] [--threads 1,2] [--json OUT]
    python3 tests/bench/suite.py --no-timing [--check-lowerings]    # correctness only
    python3 tests/bench/suite.py --write-examples examples/bench
The last line is 'N passed, M failed' (correctness); exits 1 on any correctness failure.
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CONFIGS = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "configs.json"))
VARIANTS = ["none", "zero-insert", "sparse-matmul", "col2im", "subpixel", "matmul"]
# `strider explore` names the original graph's ConvTranspose "direct".
EXPLORE_LABEL = {"none": "direct"}
# What the optimizer gives by default: the graph the cpu cost model extracts, one lowering per node
# (for a model, a mixture). Timed beside the forced lowerings and a candidate for "best".
DEFAULT_PICK = "auto/cpu"
TIMED = VARIANTS + [DEFAULT_PICK]
# The lowerings `strider optimize --strategy` writes out (sparse-matmul is bench-only).
LOWERINGS = ["zero-insert", "col2im", "subpixel", "matmul"]


def ensure_packages():
    """Re-executes inside a virtual environment that has onnx, onnxruntime and numpy."""
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("STRIDER_ORT_VENV_ACTIVE"):
        sys.exit("onnx/onnxruntime/numpy still missing inside the virtual environment")
    env_dir = os.path.join(tempfile.gettempdir(), "strider-ort-venv")
    python = os.path.join(env_dir, "bin", "python")
    if not os.path.exists(python):
        venv.create(env_dir, with_pip=True)
    probe = subprocess.run([python, "-c", "import numpy, onnx, onnxruntime"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "numpy", "onnx", "onnxruntime"], check=True)
    env = dict(os.environ, STRIDER_ORT_VENV_ACTIVE="1")
    os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)


# ---------------------------------------------------------------------------------------------------
# Configs as graphs


class Block:
    """One ConvTranspose, optionally followed by BatchNormalization + Relu, or by Tanh."""

    def __init__(self, c_in, spec, rank):
        self.c_in = c_in
        self.c_out = spec["c_out"]
        self.kernel = list(spec["kernel"])
        self.strides = list(spec.get("strides", [1] * rank))
        self.pads = list(spec.get("pads", [0] * 2 * rank))
        self.output_padding = list(spec.get("output_padding", [0] * rank))
        self.dilations = list(spec.get("dilations", [1] * rank))
        self.group = spec.get("group", 1)
        self.bias = spec.get("bias", False)
        self.weight_init = spec.get("weight_init", "normal")
        self.bn_relu = spec.get("bn_relu", False)
        self.tanh = spec.get("tanh", False)
        if self.c_in % self.group or self.c_out % self.group:
            raise ValueError(f"group {self.group} does not divide C={self.c_in}, M={self.c_out}")

    def weight_shape(self):
        return [self.c_in, self.c_out // self.group] + self.kernel

    def attrs(self):
        return {
            "kernel_shape": self.kernel,
            "strides": self.strides,
            "pads": self.pads,
            "output_padding": self.output_padding,
            "dilations": self.dilations,
            "group": self.group,
        }


class Config:
    """A config of configs.json: a single layer or a model of blocks, as a list of nodes."""

    def __init__(self, raw, is_model):
        self.raw = raw
        self.name = raw["name"]
        self.source = raw.get("source", "")
        self.input_shape = list(raw["input"])
        rank = len(self.input_shape) - 2
        specs = raw["blocks"] if is_model else [raw]
        self.blocks = []
        c = self.input_shape[1]
        for spec in specs:
            self.blocks.append(Block(c, spec, rank))
            c = spec["c_out"]
        # Seeded per config, independent of the config's position in the file.
        self.seed = zlib.crc32(self.name.encode())

    def graph(self):
        """(initializers, nodes): initializers as (name, shape, kind, block) with kind one of weight,
        bias, bn_scale, bn_bias, bn_mean, bn_var; nodes as (name, op, attrs, inputs, outputs)."""
        inits, nodes = [], []
        single = len(self.blocks) == 1
        current = "x"
        for i, b in enumerate(self.blocks):
            s = "" if single else str(i + 1)
            last = i == len(self.blocks) - 1
            w = f"w{s}"
            inits.append((w, b.weight_shape(), "weight", b))
            inputs = [current, w]
            if b.bias:
                inits.append((f"b{s}", [b.c_out], "bias", b))
                inputs.append(f"b{s}")
            out = "y" if last and not (b.bn_relu or b.tanh) else f"h{s}"
            nodes.append((f"up{s}", "ConvTranspose", b.attrs(), inputs, [out]))
            current = out
            if b.bn_relu:
                names = [f"bn{s}_{k}" for k in ("scale", "bias", "mean", "var")]
                for n, kind in zip(names, ("bn_scale", "bn_bias", "bn_mean", "bn_var")):
                    inits.append((n, [b.c_out], kind, b))
                nodes.append((f"bn{s}", "BatchNormalization", {"epsilon": 1e-5}, [current] + names, [f"n{s}"]))
                out = "y" if last and not b.tanh else f"a{s}"
                nodes.append((f"relu{s}", "Relu", {}, [f"n{s}"], [out]))
                current = out
            if b.tanh:
                nodes.append((f"tanh{s}", "Tanh", {}, [current], ["y"]))
                current = "y"
        return inits, nodes


def load_configs(path):
    with open(path) as f:
        data = json.load(f)
    configs = [Config(raw, False) for raw in data.get("layers", [])]
    configs += [Config(raw, True) for raw in data.get("models", [])]
    return configs


# ---------------------------------------------------------------------------------------------------
# Data


def bilinear_1d(k, np):
    """FCN's get_upsampling_weight for one axis, as Strider's seeded::bilinear_1d (f64, then f32)."""
    factor = (k + 1) // 2
    center = factor - 1.0 if k % 2 == 1 else factor - 0.5
    return np.array([1.0 - abs(i - center) / factor for i in range(k)], dtype=np.float64).astype(np.float32)


def bilinear_weight(shape, np):
    """Strider's `Bilinear`: the separable filter on each channel pair i = j (every pair when M/group = 1)."""
    kernel = np.ones([], dtype=np.float32)
    for k in shape[2:]:
        kernel = np.multiply.outer(kernel, bilinear_1d(k, np)).astype(np.float32)
    w = np.zeros(shape, dtype=np.float32)
    for i in range(shape[0]):
        if shape[1] == 1:
            w[i, 0] = kernel
        elif i < shape[1]:
            w[i, i] = kernel
    return w


def make_data(config, np):
    """The input and every initializer, from one numpy generator seeded by the config's name."""
    rng = np.random.default_rng(config.seed)
    data = {"x": rng.standard_normal(config.input_shape).astype(np.float32)}
    inits, _ = config.graph()
    for name, shape, kind, block in inits:
        if kind == "weight":
            if block.weight_init == "bilinear":
                data[name] = bilinear_weight(shape, np)
            else:
                data[name] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        elif kind in ("bias", "bn_bias", "bn_mean"):
            data[name] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        elif kind == "bn_scale":
            data[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif kind == "bn_var":
            data[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            raise ValueError(kind)
    return data


# ---------------------------------------------------------------------------------------------------
# Writers


def ron_list(values):
    return "[" + ", ".join(str(v) for v in values) + "]"


def ron_op(op, attrs):
    if op in ("Relu", "Tanh"):
        return op
    if op == "BatchNormalization":
        return "BatchNormalization()" if attrs.get("epsilon", 1e-5) == 1e-5 else f"BatchNormalization(epsilon: {attrs['epsilon']!r})"
    text = ", ".join(f"{k}: {ron_list(v) if isinstance(v, list) else v}" for k, v in attrs.items())
    return f"{op}({text})"


def seeded_spec(kind, block, seed):
    """The RON initializer of --write-examples: value-stable seeded generators, as make_data's laws."""
    if kind == "weight":
        return "Bilinear" if block.weight_init == "bilinear" else f"Normal(seed: {seed}, std: 0.02)"
    if kind in ("bias", "bn_bias", "bn_mean"):
        return f"Normal(seed: {seed}, std: 0.1)"
    if kind == "bn_scale":
        return f"Normal(seed: {seed}, mean: 1.0, std: 0.1)"
    if kind == "bn_var":
        return f"Uniform(seed: {seed}, low: 0.5, high: 1.5)"
    raise ValueError(kind)


def ron_text(config, npy=True, header=()):
    """The RON model: initializers as Npy("<name>.npy") files, or (npy=False) seeded generators."""
    inits, nodes = config.graph()
    lines = [f"// {h}" if h else "//" for h in header]
    lines += ["(", f'    name: "{config.name}",', "    inputs: [", f'        (name: "x", shape: {ron_list(config.input_shape)}),', "    ],"]
    lines.append("    initializers: [")
    for seed, (name, shape, kind, block) in enumerate(inits, start=1):
        data = f'Npy("{name}.npy")' if npy else seeded_spec(kind, block, seed)
        lines.append(f'        (name: "{name}", shape: {ron_list(shape)}, data: {data}),')
    lines.append("    ],")
    lines.append("    nodes: [")
    for name, op, attrs, inputs, outputs in nodes:
        ins = ", ".join(f'"{n}"' for n in inputs)
        outs = ", ".join(f'"{n}"' for n in outputs)
        lines.append(f'        (name: "{name}", op: {ron_op(op, attrs)}, inputs: [{ins}], outputs: [{outs}]),')
    lines.append("    ],")
    lines.append('    outputs: ["y"],')
    lines.append(")")
    return "\n".join(lines) + "\n"


def onnx_model(config, data):
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = config.graph()
    onnx_nodes = [helper.make_node(op, inputs, outputs, name=name, **attrs) for name, op, attrs, inputs, outputs in nodes]
    graph = helper.make_graph(
        onnx_nodes,
        config.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, config.input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(data[name], name) for name, _, _, _ in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="strider-bench-suite")
    model.ir_version = 8  # the IR version of opset 17, which every recent onnxruntime reads
    return model


def config_comment(config):
    """The config's line(s) of configs.json, for the header of an example."""
    raw = {k: v for k, v in config.raw.items() if k != "source"}
    blocks = raw.pop("blocks", None)
    lines = [json.dumps(raw, separators=(", ", ": "))]
    if blocks is not None:
        lines[0] = lines[0][:-1] + ', "blocks": ['
        lines += ["    " + json.dumps(b, separators=(", ", ": ")) + "," for b in blocks]
        lines[-1] = lines[-1][:-1]
        lines.append("]}")
    return lines


def write_examples(configs, out_dir, strider):
    os.makedirs(out_dir, exist_ok=True)
    failed = 0
    for config in configs:
        header = [
            f"Benchmark config `{config.name}` of ../shared/bench/configs.json, written by",
            "`python3 tests/bench/suite.py --write-examples examples/bench` (regenerate rather than edit).",
            f"source: {config.source}",
        ] + [("config: " if i == 0 else "        ") + line for i, line in enumerate(config_comment(config))] + [
            "Seeded initializers of the suite's laws; the suite itself feeds Strider and onnxruntime the",
            "same numpy-generated .npy data instead. Bench: strider bench examples/bench/" + config.name + ".ron",
        ]
        path = os.path.join(out_dir, f"{config.name}.ron")
        with open(path, "w") as f:
            f.write(ron_text(config, npy=False, header=header))
        check = subprocess.run([strider, "info", path], capture_output=True, text=True)
        status = "ok" if check.returncode == 0 else "FAILED: " + check.stderr.strip()
        failed += check.returncode != 0
        print(f"wrote {os.path.relpath(path)}  (strider info: {status})")
    return failed


# ---------------------------------------------------------------------------------------------------
# Peers


def ort_session(model_bytes, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def time_ort(session, x, runs, warmup):
    for _ in range(warmup):
        session.run(None, {"x": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append((time.perf_counter() - start) * 1e3)
    return times


def explore_flops(strider, ron):
    """Each variant's FLOPs summed over the ConvTranspose nodes (nodes it does not apply to count
    their direct FLOPs), and the graph's other FLOPs are ignored: enough to screen out the absurd."""
    out = subprocess.run([strider, "explore", ron, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    totals = {}
    for node in json.loads(out.stdout)["nodes"]:
        per = {v["lowering"]: v["flops"] for v in node["variants"]}
        direct = per.get("direct")
        if direct is None:
            return None
        for label in VARIANTS:
            totals[label] = totals.get(label, 0) + per.get(EXPLORE_LABEL.get(label, label), direct)
    return totals


def screen(strider, ron, max_ratio):
    """The variants to time and {label: reason} for those left out by the FLOPs screen."""
    if not max_ratio:
        return None, {}
    flops = explore_flops(strider, ron)
    if not flops:
        return None, {}
    base = flops["none"]
    left_out = {
        label: f"{flops[label] / base:.0f}x the FLOPs of the original ({flops[label] / 1e9:.1f} GFLOP), above --max-flops-ratio {max_ratio:g}"
        for label in VARIANTS
        if flops[label] > max_ratio * base
    }
    if not left_out:
        return None, {}
    return [v for v in VARIANTS if v not in left_out], left_out


def strider_bench(strider, ron, x_file, threads, runs, strategies):
    args = [strider, "bench", ron, "--json", "--threads", str(threads), "--warmup", "2", "--runs", str(runs), "--input", f"x={x_file}"]
    for s in strategies or VARIANTS:
        args += ["--strategy", s]
    args += ["--cost", DEFAULT_PICK.split("/")[1]]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"exit status {out.returncode}")
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------------------
# Suite


def median(values):
    return statistics.median(values) if values else None


def compare(got, want, args, np):
    """The comparison of one output with onnxruntime's."""
    result = {"passed": False, "shape": list(want.shape)}
    if got.shape != want.shape:
        result["error"] = f"shapes differ: strider {list(got.shape)}, onnxruntime {list(want.shape)}"
        return result
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    result["max_abs_err"] = float(diff.max()) if diff.size else 0.0
    result["max_abs_ort"] = float(np.abs(want).max()) if want.size else 0.0
    result["passed"] = bool(np.allclose(got, want, atol=args.atol, rtol=args.rtol))
    if not result["passed"]:
        result["error"] = f"max |diff| {result['max_abs_err']:.3g} (max |ort| {result['max_abs_ort']:.3g})"
    return result


def strider_output(strider, ron, x_file, out_dir):
    run = subprocess.run([strider, "run", ron, "--input", f"x={x_file}", "--out", out_dir], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"strider run: {run.stderr.strip()}")
    import numpy as np

    return np.load(os.path.join(out_dir, "y.npy"))


def check_correctness(model_bytes, ron, x_file, workdir, strider, args, np):
    """onnxruntime's output, and the comparison of `strider run`'s with it."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        want = session.run(None, {"x": np.load(x_file)})[0]
    except Exception as e:  # onnxruntime refusing a config is a finding too
        return None, {"passed": False, "error": f"onnxruntime: {e}"}
    try:
        got = strider_output(strider, ron, x_file, os.path.join(workdir, "out"))
    except RuntimeError as e:
        return want, {"passed": False, "error": str(e)}
    return want, compare(got, want, args, np)


def check_lowering(strategy, want, ron, x_file, workdir, strider, args, np):
    """`strider optimize --strategy S` written out and run, compared with onnxruntime's output."""
    # Next to the original: `optimize` copies Npy("...") paths as they are, relative to the model file.
    model = os.path.join(workdir, f"lowered-{strategy}.ron")
    opt = subprocess.run([strider, "optimize", ron, "--strategy", strategy, "-o", model], capture_output=True, text=True)
    if opt.returncode != 0:
        return {"passed": False, "error": f"strider optimize: {opt.stderr.strip()}"}
    try:
        got = strider_output(strider, model, x_file, os.path.join(workdir, f"out-{strategy}"))
    except RuntimeError as e:
        return {"passed": False, "error": str(e)}
    return compare(got, want, args, np)


def report_check(label, c):
    if c["passed"]:
        print(f"  {label}: correct, max |diff| {c['max_abs_err']:.3g} (max |ort| {c['max_abs_ort']:.3g}), output {c['shape']}", flush=True)
    else:
        print(f"  {label}: FAIL {c.get('error')}", flush=True)


def run_config(config, strider, args, np):
    with tempfile.TemporaryDirectory(prefix=f"strider-bench-{config.name}-") as workdir:
        data = make_data(config, np)
        for name, array in data.items():
            np.save(os.path.join(workdir, f"{name}.npy"), array)
        x_file = os.path.join(workdir, "x.npy")
        ron = os.path.join(workdir, f"{config.name}.ron")
        with open(ron, "w") as f:
            f.write(ron_text(config, npy=True))
        model_bytes = onnx_model(config, data).SerializeToString()
        with open(os.path.join(workdir, f"{config.name}.onnx"), "wb") as f:
            f.write(model_bytes)

        result = {"name": config.name, "source": config.source, "loadavg": list(os.getloadavg())}
        want, result["correctness"] = check_correctness(model_bytes, ron, x_file, workdir, strider, args, np)
        report_check("strider run", result["correctness"])
        strategies, left_out = screen(strider, ron, args.max_flops_ratio)
        result["lowerings"] = {}
        if args.check_lowerings and want is not None:
            for s in LOWERINGS:
                if s in left_out:
                    print(f"  {s}: not checked ({left_out[s]})", flush=True)
                    continue
                result["lowerings"][s] = check_lowering(s, want, ron, x_file, workdir, strider, args, np)
                report_check(s, result["lowerings"][s])
        result["threads"] = {}
        if args.no_timing:
            return result
        x = data["x"]
        per_thread = {t: {"ort_ms": [], "strider_ms": {}, "skipped": dict(left_out), "machine": None, "flops": {}, "errors": []} for t in args.threads}
        for r in range(args.rounds):
            for t in args.threads:
                # A session per round, closed before Strider runs: onnxruntime's idle pool threads
                # spin for a while after each run and would take a core from the next peer.
                session = ort_session(model_bytes, t)
                per_thread[t]["ort_ms"] += time_ort(session, x, args.runs, 2)
                del session
                gc.collect()
            for t in args.threads:
                slot = per_thread[t]
                try:
                    report = strider_bench(strider, ron, x_file, t, args.runs, strategies)
                except Exception as e:
                    slot["errors"].append(str(e))
                    print(f"  strider bench --threads {t} failed: {e}", flush=True)
                    continue
                slot["machine"] = report["machine"]
                for v in report["variants"]:
                    slot["strider_ms"].setdefault(v["label"], []).extend(v["times_ms"])
                    slot["flops"][v["label"]] = v["flops"]
                for s in report["skipped"]:
                    slot["skipped"][s["label"]] = s["reason"]
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
        for t, slot in per_thread.items():
            medians = {label: median(times) for label, times in slot["strider_ms"].items()}
            best = min(medians, key=medians.get) if medians else None
            ort_median = median(slot["ort_ms"])
            slot["ort_median_ms"] = ort_median
            slot["strider_median_ms"] = medians
            slot["best"] = best
            slot["best_over_ort"] = medians[best] / ort_median if best and ort_median else None
            result["threads"][str(t)] = slot
        return result


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def print_tables(results, threads, ort_version):
    for t in threads:
        key = str(t)
        machine = next((r["threads"][key]["machine"] for r in results if r["threads"][key]["machine"]), None)
        print()
        print(f"== {t} thread{'s' if t != 1 else ''} ==")
        if machine:
            print(
                f"machine: {machine['cpu']}, {machine['simd']}, {machine['threads']} thread(s), "
                f"GEMM peak {machine['gemm_peak_gflops']:.1f} GF/s (n={machine['gemm_peak_size']}); onnxruntime {ort_version}"
            )
        else:
            print(f"machine: (no strider report); onnxruntime {ort_version}")
        header = ["config", "ORT ms"] + TIMED + ["best", "best/ORT"]
        rows = []
        for r in results:
            slot = r["threads"][key]
            med = slot["strider_median_ms"]
            ratio = slot["best_over_ort"]
            rows.append(
                [r["name"], fmt_ms(slot["ort_median_ms"])]
                + [fmt_ms(med.get(v)) for v in TIMED]
                + [slot["best"] or "—", f"{ratio:.2f}" if ratio is not None else "—"]
            )
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        line = lambda cells: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
        print(line(header))
        print("-|-".join("-" * w for w in widths))
        for row in rows:
            print(line(row))
    notes = []
    for r in results:
        reasons = {}
        for slot in r["threads"].values():
            for label, reason in slot["skipped"].items():
                reasons.setdefault(label, reason)
        for label in VARIANTS:
            if label in reasons:
                notes.append(f"  {r['name']}: {label} — {reasons[label]}")
    if notes:
        print()
        print("not timed:")
        print("\n".join(notes))


def parse_threads(text):
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of thread counts, found `{text}`")
    if not threads or any(t < 1 for t in threads):
        raise argparse.ArgumentTypeError(f"thread counts must be at least 1, found `{text}`")
    return threads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="configs JSON (default: ../shared/bench/configs.json from the repo root)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this config (repeatable)")
    parser.add_argument("--strider", default=os.path.join(ROOT, "target", "release", "strider"), help="strider binary (built if missing)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per round per peer (default 10)")
    parser.add_argument("--threads", type=parse_threads, default=[1, 2], help="thread counts, comma-separated (default 1,2)")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--max-flops-ratio", type=float, default=16.0, help="do not time variants with more than this many times the original's FLOPs (default 16; 0: time all)")
    parser.add_argument("--no-timing", action="store_true", help="only the correctness comparison")
    parser.add_argument(
        "--check-lowerings",
        action="store_true",
        help="also compare each lowering (strider optimize --strategy S, then strider run) with onnxruntime; each counts as a check",
    )
    parser.add_argument("--json", metavar="OUT", help="write every result (all per-run times) to this file")
    parser.add_argument("--write-examples", metavar="DIR", help="write each config as a self-contained seeded RON model into DIR and exit")
    args = parser.parse_args()
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be at least 1")

    configs = load_configs(args.configs)
    if args.only:
        unknown = [n for n in args.only if n not in {c.name for c in configs}]
        if unknown:
            parser.error(f"unknown config(s): {', '.join(unknown)}; known: {', '.join(c.name for c in configs)}")
        configs = [c for c in configs if c.name in args.only]
    if not os.path.exists(args.strider):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if args.write_examples:
        sys.exit(1 if write_examples(configs, args.write_examples, args.strider) else 0)

    ensure_packages()
    import numpy as np
    import onnxruntime

    results = []
    for i, config in enumerate(configs):
        load = os.getloadavg()
        print(f"[{i + 1}/{len(configs)}] {config.name}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        results.append(run_config(config, args.strider, args, np))

    if not args.no_timing:
        print_tables(results, args.threads, onnxruntime.__version__)
    checks = [(r["name"], "strider run", r["correctness"]) for r in results]
    checks += [(r["name"], s, c) for r in results for s, c in r["lowerings"].items()]
    passed = sum(c["passed"] for _, _, c in checks)
    failed = len(checks) - passed
    bench_errors = [(r["name"], t, e) for r in results for t, slot in r["threads"].items() for e in slot["errors"]]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "configs": os.path.abspath(args.configs),
                    "onnxruntime": onnxruntime.__version__,
                    "rounds": args.rounds,
                    "runs": args.runs,
                    "threads": args.threads,
                    "atol": args.atol,
                    "rtol": args.rtol,
                    "max_flops_ratio": args.max_flops_ratio,
                    "check_lowerings": args.check_lowerings,
                    "results": results,
                    "passed": passed,
                    "failed": failed,
                },
                f,
                indent=1,
            )
        print(f"\nwrote {args.json}")
    print()
    for name, label, c in checks:
        if not c["passed"]:
            print(f"FAIL {name} ({label}): {c.get('error')}")
    for name, t, e in bench_errors:
        print(f"warning: strider bench failed on {name} with {t} thread(s): {e.splitlines()[-1] if e else e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
