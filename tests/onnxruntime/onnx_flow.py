#!/usr/bin/env python3
"""Strider's ONNX import and export through a real runtime (outside `cargo test`).

1. Every example model (examples/models, examples/bench) round-trips RON -> ONNX -> RON unchanged
   (`strider info` prints the same), and onnx.checker accepts each exported file.
2. The DCGAN generator as ONNX -> `strider optimize --cost examples/targets/npu.ron -o dcgan_npu.onnx`:
   onnxruntime runs both, the outputs agree, and the lowered graph has no ConvTranspose.
3. Every lowering (zero-insert, col2im, subpixel, matmul where legal, sparse-matmul under the dense
   bound) of every bench config (examples/bench, the configs of ../shared/bench/configs.json),
   exported and run by onnxruntime, matches onnxruntime's own ConvTranspose; each lowering's
   onnxruntime time is printed beside the ConvTranspose's.
4. The ONNX backend test directories shipped inside the onnx package whose ops Strider has run with
   their .pb inputs and expected outputs (`strider run --input ... --expect ...`).

Usage (installs onnx, onnxruntime and numpy from PyPI into a private virtual environment):
    python3 tests/onnxruntime/onnx_flow.py [--strider PATH] [--runs N] [--skip-timing]
Prints one line per check and ends with 'N passed, M failed'; exits 1 on any failure.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ONNX op types Strider imports (README.md, section ONNX).
SUPPORTED = {
    "Conv", "ConvTranspose", "Upsample", "Resize", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Sqrt", "Relu",
    "LeakyRelu", "Sigmoid", "Tanh", "BatchNormalization", "Concat", "Reshape", "Flatten", "Transpose", "Pad",
    "Slice", "DepthToSpace", "Identity", "Col2Im", "Constant", "Squeeze", "Unsqueeze",
}
LOWERINGS = ["zero-insert", "col2im", "subpixel", "matmul", "sparse-matmul"]


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
    subprocess.run([python, "-m", "pip", "install", "--quiet", "numpy", "onnx", "onnxruntime"], check=True)
    env = dict(os.environ, STRIDER_ORT_VENV_ACTIVE="1")
    os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, label, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {label}{(' ' + detail) if detail else ''}")
        else:
            self.failed += 1
            print(f"FAIL {label}{(': ' + detail) if detail else ''}")


def strider_cmd(strider, *args):
    return subprocess.run([strider, *args], capture_output=True, text=True)


def session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def inputs_of(model, rng, np):
    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return feeds


def close(want, got, np, atol=1e-4, rtol=1e-3):
    if want.shape != got.shape:
        return False, f"shape {got.shape} != {want.shape}"
    err = np.abs(want - got)
    ok = bool(np.all(err <= atol + rtol * np.abs(want)))
    return ok, f"max abs error {float(err.max()) if err.size else 0.0:.2e}"


def median_time(sess, feeds, runs):
    sess.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def round_trips(strider, work, tally, onnx):
    models = sorted(glob.glob(os.path.join(ROOT, "examples", "models", "*.ron")))
    models += sorted(glob.glob(os.path.join(ROOT, "examples", "bench", "*.ron")))
    for ron in models:
        name = os.path.splitext(os.path.basename(ron))[0]
        exported = os.path.join(work, f"{name}.onnx")
        back = os.path.join(work, f"{name}.back.ron")
        first = strider_cmd(strider, "convert", ron, "-o", exported)
        second = strider_cmd(strider, "convert", exported, "-o", back) if first.returncode == 0 else first
        if second.returncode != 0:
            tally.check(False, f"round trip {name}", (first.stderr + second.stderr).strip())
            continue
        same = strider_cmd(strider, "info", ron).stdout == strider_cmd(strider, "info", back).stdout
        tally.check(same, f"round trip {name}", "" if same else "`strider info` differs after RON -> ONNX -> RON")
        try:
            onnx.checker.check_model(onnx.load(exported), full_check=True)
            tally.check(True, f"checker {name}")
        except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
            tally.check(False, f"checker {name}", str(e).splitlines()[0])


def dcgan_npu(strider, work, tally, onnx, np):
    original = os.path.join(work, "dcgan_generator.onnx")
    lowered = os.path.join(work, "dcgan_npu.onnx")
    out = strider_cmd(strider, "optimize", original, "--cost", os.path.join(ROOT, "examples", "targets", "npu.ron"),
                      "-o", lowered)
    if out.returncode != 0:
        tally.check(False, "dcgan npu", out.stderr.strip())
        return
    model = onnx.load(lowered)
    ops = {n.op_type for n in model.graph.node}
    tally.check("ConvTranspose" not in ops, "dcgan npu has no ConvTranspose", ", ".join(sorted(ops)))
    feeds = inputs_of(model, np.random.default_rng(1), np)
    want = session(original).run(None, feeds)[0]
    got = session(lowered).run(None, feeds)[0]
    ok, detail = close(want, got, np)
    tally.check(ok, "dcgan npu in onnxruntime matches the original", detail)


def lowerings(strider, work, tally, onnx, np, runs, timing):
    for ron in sorted(glob.glob(os.path.join(ROOT, "examples", "bench", "*.ron"))):
        name = os.path.splitext(os.path.basename(ron))[0]
        original = os.path.join(work, f"{name}.onnx")
        if not os.path.exists(original):
            continue
        feeds = inputs_of(onnx.load(original), np.random.default_rng(2), np)
        base = session(original)
        want = base.run(None, feeds)[0]
        times = [f"ConvTranspose {median_time(base, feeds, runs) * 1e3:.2f} ms"] if timing else []
        for lowering in LOWERINGS:
            path = os.path.join(work, f"{name}.{lowering}.onnx")
            out = strider_cmd(strider, "optimize", ron, "--strategy", lowering, "-o", path)
            if out.returncode != 0:
                # A matrix too large to store (--max-elements) or to write densely (--max-dense-elements)
                # is refused on purpose, with the reason; anything else is a failure.
                refused = "--max-dense-elements" in out.stderr or "--max-elements" in out.stderr
                if refused:
                    print(f"skip {name} {lowering}: {out.stderr.strip().splitlines()[0].strip(' ×')}")
                else:
                    tally.check(False, f"{name} {lowering}", out.stderr.strip())
                continue
            model = onnx.load(path)
            if "ConvTranspose" in {n.op_type for n in model.graph.node}:
                continue  # the lowering does not apply to this layer
            sess = session(path)
            ok, detail = close(want, sess.run(None, feeds)[0], np)
            tally.check(ok, f"{name} {lowering} in onnxruntime matches ConvTranspose", detail)
            if timing:
                times.append(f"{lowering} {median_time(sess, feeds, runs) * 1e3:.2f} ms")
        if timing:
            print(f"     onnxruntime times {name}: " + ", ".join(times))


def backend_tests(strider, tally, onnx):
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for directory in sorted(glob.glob(os.path.join(data, "*", "test_*"))):
        path = os.path.join(directory, "model.onnx")
        sets = sorted(glob.glob(os.path.join(directory, "test_data_set_*")))
        if not os.path.exists(path) or not sets:
            continue
        model = onnx.load(path, load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        if not ops <= SUPPORTED or any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
            continue
        elem_types = {vi.type.tensor_type.elem_type for vi in list(model.graph.input) + list(model.graph.output)}
        if elem_types != {onnx.TensorProto.FLOAT}:
            continue
        initializers = {t.name for t in model.graph.initializer}
        inputs = [vi.name for vi in model.graph.input if vi.name not in initializers]
        outputs = [vi.name for vi in model.graph.output]
        label = f"backend {os.path.basename(os.path.dirname(directory))}/{os.path.basename(directory)}"
        args = ["run", path]
        for i, name in enumerate(inputs):
            args += ["--input", f"{name}={os.path.join(sets[0], f'input_{i}.pb')}"]
        for i, name in enumerate(outputs):
            args += ["--expect", f"{name}={os.path.join(sets[0], f'output_{i}.pb')}"]
        out = strider_cmd(strider, *args, "--atol", "1e-4", "--rtol", "1e-3")
        detail = (out.stderr.strip().splitlines() or [""])[0] if out.returncode else ""
        tally.check(out.returncode == 0, label, detail)


def main():
    ensure_packages()
    import numpy as np
    import onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strider", default=os.path.join(ROOT, "target", "release", "strider"))
    parser.add_argument("--runs", type=int, default=10, help="timed onnxruntime runs per model")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(args.strider):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tally = Tally()
    with tempfile.TemporaryDirectory() as work:
        round_trips(args.strider, work, tally, onnx)
        dcgan_npu(args.strider, work, tally, onnx, np)
        lowerings(args.strider, work, tally, onnx, np, args.runs, not args.skip_timing)
        backend_tests(args.strider, tally, onnx)
    print(f"{tally.passed} passed, {tally.failed} failed")
    sys.exit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
