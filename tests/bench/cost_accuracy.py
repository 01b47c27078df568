#!/usr/bin/env python3
"""Cost-model accuracy: does each cost model pick the measured-fastest lowering?

For every benchmark layer in examples/bench/ (the configs of ../shared/bench/configs.json as seeded
models), runs `strider bench --json` with the original and every forced lowering timed side by side,
plus the graph each cost model extracts (`--cost`), and reads bench's "picks": which timed variant
each model's graph is and its slowdown against the fastest. Prints a Markdown table (one row per
config, one column per model) and, per model, how many configs it picks within 10% of the fastest
and its worst slowdown.

Usage (needs only the Rust toolchain and python3; builds the release binary first):
    python3 tests/bench/cost_accuracy.py [--cost cpu] [--cost flops] [--cost TARGET.ron]...
        [--tuning-db FILE.jsonl] [--threads 1] [--min-time 1] [--only NAME]... [--json OUT]
With --tuning-db, the measured model is included as `auto/measured` (the log is filled first with
`strider tune`).
"""
import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRATEGIES = ["none", "zero-insert", "sparse-matmul", "col2im", "subpixel", "matmul"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cost", action="append", help="cost models to judge (default: cpu, flops)")
    parser.add_argument("--tuning-db", help="also judge measured costs from this tuning log")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--only", action="append", help="config names to run (default: all)")
    parser.add_argument("--json", help="write every bench result here")
    args = parser.parse_args()
    costs = args.cost or ["cpu", "flops"]

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    strider = os.path.join(ROOT, "target", "release", "strider")
    configs = sorted(glob.glob(os.path.join(ROOT, "examples", "bench", "*.ron")))
    if args.only:
        configs = [c for c in configs if os.path.basename(c)[:-4] in args.only]

    rows, results = [], {}
    labels = []
    for path in configs:
        name = os.path.basename(path)[:-4]
        cmd = [strider, "bench", path, "--json", "--threads", str(args.threads), "--min-time", str(args.min_time)]
        for s in STRATEGIES:
            cmd += ["--strategy", s]
        for c in costs:
            cmd += ["--cost", c]
        if args.tuning_db:
            tune = [strider, "tune", path, "--tuning-db", args.tuning_db, "--threads", str(args.threads)]
            subprocess.run(tune, check=True, stdout=subprocess.DEVNULL)
            cmd += ["--cost", "measured", "--tuning-db", args.tuning_db]
        print(f"{name} …", file=sys.stderr)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        result = json.loads(out)
        results[name] = result
        picks = {p["label"]: p for p in result["picks"]}
        for label in picks:
            if label not in labels:
                labels.append(label)
        fastest = min(result["variants"], key=lambda v: v["median_ms"])
        rows.append((name, fastest, picks))

    machine = next(iter(results.values()))["machine"] if results else {}
    print(f"machine: {machine.get('cpu')}, {machine.get('simd')}, {machine.get('threads')} thread(s)")
    print()
    print("| config | fastest (ms) | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for name, fastest, picks in rows:
        cells = []
        for label in labels:
            p = picks.get(label)
            cells.append(f"{p['same_as']} {p['slowdown']:.2f}×" if p else "—")
        print(f"| {name} | {fastest['label']} {fastest['median_ms']:.3f} | " + " | ".join(cells) + " |")
    print()
    for label in labels:
        slowdowns = [picks[label]["slowdown"] for _, _, picks in rows if label in picks]
        within = sum(1 for s in slowdowns if s <= 1.10)
        worst = max(slowdowns) if slowdowns else float("nan")
        print(f"{label}: within 10% of the fastest on {within} of {len(slowdowns)} configs; worst {worst:.2f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
