//! RON model text → parse, validate and infer shapes under tight limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(graph) = strider_fuzz::parse_model(data) {
        // Everything shape inference promised must hold for every node.
        for (_, node) in graph.nodes() {
            assert_eq!(graph.output_shapes(node).len(), node.outputs.len());
            let _ = graph.node_flops(node);
        }
    }
});
