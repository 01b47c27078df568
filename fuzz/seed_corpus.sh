#!/bin/sh
# Seeds fuzz/corpus/TARGET from examples/ (run from anywhere; the corpora are not committed).
set -eu
cd "$(dirname "$0")"
ex=../examples
mkdir -p corpus/load_ron corpus/run corpus/optimize corpus/read_npy corpus/import_onnx
for f in "$ex"/models/*.ron "$ex"/invalid/*.ron "$ex"/bench/*.ron; do
    name=$(basename "$(dirname "$f")")_$(basename "$f")
    cp "$f" "corpus/load_ron/$name"
    cp "$f" "corpus/run/$name"
    # The optimize target reads a strategy byte first: one seed per strategy (auto, none, five lowerings).
    for s in 0 1 2 3 4 5 6; do
        { printf "\\$(printf '%03o' "$s")"; cat "$f"; } > "corpus/optimize/${s}_$name"
    done
done
for f in "$ex"/models/*.npy "$ex"/invalid/*.npy; do
    cp "$f" "corpus/read_npy/$(basename "$f")"
done
for f in "$ex"/invalid/*.onnx; do
    cp "$f" "corpus/import_onnx/$(basename "$f")"
done
# Valid ONNX models: the small example models converted, when a strider binary is given
# (STRIDER=target/debug/strider ./seed_corpus.sh) and the result stays under 64 KiB.
if [ -n "${STRIDER:-}" ]; then
    for f in "$ex"/models/*.ron "$ex"/invalid/*.ron; do
        out="corpus/import_onnx/$(basename "$f" .ron).onnx"
        "$STRIDER" convert "$f" --output "$out" >/dev/null 2>&1 || rm -f "$out"
        if [ -f "$out" ] && [ "$(wc -c < "$out")" -gt 65536 ]; then rm -f "$out"; fi
    done
fi
du -sh corpus/*
