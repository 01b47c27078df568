//! The first byte picks a strategy (auto, none, or one forced lowering); the rest is RON model text,
//! which is optimized with tight saturation limits and, when that succeeds, run.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use strider_interp::{Plan, PlanOptions, feeds};
use strider_rewrite::cost::Flops;
use strider_rewrite::{Lowering, OptimizeOptions, RunLimits, Strategy};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else { return };
    let strategy = match usize::from(choice) % (Lowering::ALL.len() + 2) {
        0 => Strategy::Auto,
        1 => Strategy::None,
        i => Strategy::Force(Lowering::ALL[i - 2]),
    };
    let Some(graph) = strider_fuzz::parse_model(text) else { return };
    let opts = OptimizeOptions {
        strategy,
        fold_constants: choice & 0x80 != 0,
        run_limits: RunLimits { nodes: 2_000, iterations: 4, time: Duration::from_secs(1) },
        limits: strider_fuzz::LIMITS,
    };
    let Ok(optimized) = strider_rewrite::optimize(&graph, &Flops::default(), &opts) else { return };
    let Ok(mut plan) = Plan::new(&optimized.graph, &PlanOptions { threads: 1 }) else { return };
    let mut inputs = HashMap::new();
    feeds::fill_missing(&optimized.graph, 0, &mut inputs).expect("inputs under the element cap fit in memory");
    let _ = plan.run(&inputs);
});
