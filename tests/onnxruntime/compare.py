#!/usr/bin/env python3
"""Reference check of Strider's interpreter against onnxruntime, an independent implementation.

Builds random single-op ONNX models (ConvTranspose, Conv, Resize/Upsample, DepthToSpace), runs them
in onnxruntime, writes the same op as a Strider RON model, runs it with `strider run`, and compares the
outputs (|strider - ort| <= atol + rtol * |ort|).

Configurations where onnxruntime is known to deviate from the ONNX specification are not generated
(see shared notes: negative total padding, which onnxruntime clamps). Everything else must agree.

Usage (installs onnx, onnxruntime and numpy from PyPI into a private virtual environment):
    python3 tests/onnxruntime/compare.py [--cases N] [--seed S] [--strider PATH]
Prints one line per failure and ends with 'N passed, M failed'; exits 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


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


def ron_list(values):
    return "[" + ", ".join(str(v) for v in values) + "]"


def ron_floats(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


class Case:
    """One single-op model: ONNX node attributes and Strider op text."""

    def __init__(self, name, op_type, attrs, strider_op, inputs, output_shape_hint=None):
        self.name = name
        self.op_type = op_type
        self.attrs = attrs
        self.strider_op = strider_op
        self.inputs = inputs  # list of (name, array, is_initializer)


def conv_transpose_case(rng, i, np):
    rank = int(rng.integers(1, 4))
    group = int(rng.choice([1, 1, 2]))
    cg, mg = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    spatial = [int(rng.integers(1, 5)) for _ in range(rank)]
    kernel = [int(rng.integers(1, 4)) for _ in range(rank)]
    strides = [int(rng.integers(1, 4)) for _ in range(rank)]
    dilations = [int(rng.integers(1, 3)) for _ in range(rank)]
    # onnxruntime rejects output_padding >= stride.
    output_padding = [int(rng.integers(0, s)) for s in strides]
    full = [s * (n - 1) + op + d * (k - 1) + 1 for s, n, op, d, k in zip(strides, spatial, output_padding, dilations, kernel)]
    mode = rng.choice(["pads", "pads", "same_upper", "same_lower", "output_shape"])
    attrs = {"strides": strides, "dilations": dilations, "group": group, "output_padding": output_padding}
    strider = {"strides": strides, "dilations": dilations, "group": group, "output_padding": output_padding}
    if mode == "pads":
        begins, ends = [], []
        for f in full:
            b = int(rng.integers(0, min(3, f)))
            e = int(rng.integers(0, min(3, f - b)))
            begins.append(b)
            ends.append(e)
        attrs["pads"] = strider["pads"] = begins + ends
    elif mode in ("same_upper", "same_lower"):
        # Only non-negative total padding: onnxruntime clamps negative totals (a known deviation).
        if any(f - n * s < 0 for f, n, s in zip(full, spatial, strides)):
            return None
        attrs["auto_pad"] = mode.upper()
        strider["auto_pad"] = mode.upper()
    else:
        target = [f - int(rng.integers(0, min(3, f))) for f in full]
        attrs["output_shape"] = strider["output_shape"] = target
    c = group * cg
    x = rng.standard_normal([int(rng.integers(1, 3)), c] + spatial).astype(np.float32)
    w = rng.standard_normal([c, mg] + kernel).astype(np.float32)
    inputs = [("x", x, False), ("w", w, True)]
    if rng.integers(0, 2):
        inputs.append(("b", rng.standard_normal([group * mg]).astype(np.float32), True))
    text = ", ".join(f"{k}: {v if isinstance(v, str) else ron_list(v) if isinstance(v, list) else v}" for k, v in strider.items())
    return Case(f"convtranspose_{i}", "ConvTranspose", attrs, f"ConvTranspose({text})", inputs)


def conv_case(rng, i, np):
    rank = int(rng.integers(1, 4))
    group = int(rng.choice([1, 2]))
    cg, mg = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kernel = [int(rng.integers(1, 4)) for _ in range(rank)]
    dilations = [int(rng.integers(1, 3)) for _ in range(rank)]
    strides = [int(rng.integers(1, 4)) for _ in range(rank)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * rank)]
    spatial = [max(int(rng.integers(1, 7)), d * (k - 1) + 1) for d, k in zip(dilations, kernel)]
    attrs = {"strides": strides, "dilations": dilations, "group": group, "pads": pads}
    x = rng.standard_normal([1, group * cg] + spatial).astype(np.float32)
    w = rng.standard_normal([group * mg, cg] + kernel).astype(np.float32)
    inputs = [("x", x, False), ("w", w, True), ("b", rng.standard_normal([group * mg]).astype(np.float32), True)]
    text = f"strides: {ron_list(strides)}, dilations: {ron_list(dilations)}, group: {group}, pads: {ron_list(pads)}"
    return Case(f"conv_{i}", "Conv", attrs, f"Conv({text})", inputs)


def resize_case(rng, i, np):
    mode = rng.choice(["nearest", "linear"])
    scales = [1.0, 1.0] + [float(rng.choice([0.5, 1.5, 2.0, 3.0])) for _ in range(2)]
    if mode == "nearest":
        ctm = rng.choice(["asymmetric", "half_pixel", "align_corners"])
        nearest = rng.choice(["floor", "round_prefer_floor", "round_prefer_ceil", "ceil"])
    else:
        ctm = rng.choice(["asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"])
        nearest = "floor"
    x = rng.standard_normal([1, 2, int(rng.integers(2, 6)), int(rng.integers(2, 6))]).astype(np.float32)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm, "nearest_mode": nearest, "_scales": scales}
    text = f"scales: {ron_floats(scales)}, mode: {mode}, coordinate_transformation_mode: {ctm}, nearest_mode: {nearest}"
    return Case(f"resize_{i}", "Resize", attrs, f"Upsample({text})", [("x", x, False)])


def depth_to_space_case(rng, i, np):
    b = int(rng.integers(2, 4))
    mode = rng.choice(["DCR", "CRD"])
    x = rng.standard_normal([1, b * b * int(rng.integers(1, 3)), 2, 3]).astype(np.float32)
    return Case(f"depthtospace_{i}", "DepthToSpace", {"blocksize": b, "mode": mode}, f"DepthToSpace(blocksize: {b}, mode: {mode})", [("x", x, False)])


def run_ort(case, np):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    attrs = {k: v for k, v in case.attrs.items() if not k.startswith("_")}
    initializers = [numpy_helper.from_array(a, n) for n, a, init in case.inputs if init]
    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a, init in case.inputs if not init]
    node_inputs = [n for n, _, _ in case.inputs]
    if case.op_type == "Resize":
        initializers.append(numpy_helper.from_array(np.array(case.attrs["_scales"], dtype=np.float32), "scales"))
        node_inputs = ["x", "", "scales"]
    node = helper.make_node(case.op_type, node_inputs, ["y"], **attrs)
    graph = helper.make_graph([node], case.name, graph_inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its own shape-inference warnings are not findings
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {n: a for n, a, init in case.inputs if not init}
    return session.run(["y"], feeds)[0]


def run_strider(case, strider, workdir, np):
    lines = ["(", f'    name: "{case.name}",', "    inputs: ["]
    args = [strider, "run", os.path.join(workdir, "model.ron"), "--out", os.path.join(workdir, "out")]
    for n, a, init in case.inputs:
        if not init:
            lines.append(f'        (name: "{n}", shape: {ron_list(a.shape)}),')
            np.save(os.path.join(workdir, f"{n}.npy"), a)
            args += ["--input", f"{n}={os.path.join(workdir, n + '.npy')}"]
    lines.append("    ],")
    lines.append("    initializers: [")
    for n, a, init in case.inputs:
        if init:
            np.save(os.path.join(workdir, f"{n}.npy"), a)
            lines.append(f'        (name: "{n}", shape: {ron_list(a.shape)}, data: Npy("{n}.npy")),')
    lines.append("    ],")
    names = ", ".join(f'"{n}"' for n, _, _ in case.inputs)
    lines.append(f'    nodes: [(name: "op", op: {case.strider_op}, inputs: [{names}], outputs: ["y"])],')
    lines.append('    outputs: ["y"],')
    lines.append(")")
    with open(os.path.join(workdir, "model.ron"), "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(args, check=True, capture_output=True, text=True)
    return np.load(os.path.join(workdir, "out", "y.npy"))


def main():
    ensure_packages()
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50, help="cases per op (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--strider", default=os.path.join(ROOT, "target", "release", "strider"))
    args = parser.parse_args()
    if not os.path.exists(args.strider):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    rng = np.random.default_rng(args.seed)
    passed = failed = 0
    for make in (conv_transpose_case, conv_case, resize_case, depth_to_space_case):
        made = 0
        while made < args.cases:
            case = make(rng, made, np)
            if case is None:
                continue
            made += 1
            with tempfile.TemporaryDirectory() as workdir:
                try:
                    want = run_ort(case, np)
                    got = run_strider(case, args.strider, workdir, np)
                except subprocess.CalledProcessError as e:
                    failed += 1
                    print(f"FAIL {case.name}: strider refused it: {e.stderr.strip()}\n    {case.strider_op}")
                    continue
                except Exception as e:  # onnxruntime refusing a configuration is a finding too
                    failed += 1
                    print(f"FAIL {case.name}: onnxruntime refused it: {e}\n    {case.strider_op}")
                    continue
            if want.shape != got.shape or not np.allclose(got, want, atol=args.atol, rtol=args.rtol):
                failed += 1
                worst = float(np.max(np.abs(got - want))) if want.shape == got.shape else float("inf")
                print(f"FAIL {case.name}: shapes {got.shape} vs {want.shape}, max |diff| {worst}\n    {case.strider_op}")
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
