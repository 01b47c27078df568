//! RON model text → a plan under tight limits → one run on seeded inputs.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use strider_interp::{Plan, PlanOptions, feeds};

fuzz_target!(|data: &[u8]| {
    let Some(graph) = strider_fuzz::parse_model(data) else { return };
    let Ok(mut plan) = Plan::new(&graph, &PlanOptions { threads: 1 }) else { return };
    let mut inputs = HashMap::new();
    feeds::fill_missing(&graph, 0, &mut inputs).expect("inputs under the element cap fit in memory");
    if let Ok(outputs) = plan.run(&inputs) {
        for (&v, (name, array)) in graph.outputs().iter().zip(&outputs) {
            assert_eq!(name, &graph.value(v).name);
            assert_eq!(array.shape(), graph.shape(v).dims());
        }
    }
});
