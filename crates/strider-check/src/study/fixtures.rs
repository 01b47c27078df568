//! Synthetic studies for the unit tests of conclusions and charts.

use strider_rewrite::isolate::Form;
use strider_rewrite::rules::Lowering;

use super::{Configuration, Measurement, Pick, Study, StudySetup};
use crate::bench::Machine;

pub(super) const DIRECT: Form = Form::Direct;
pub(super) const SUBPIXEL: Form = Form::Lowered(Lowering::Subpixel);
pub(super) const COL2IM: Form = Form::Lowered(Lowering::Col2Im);

pub(super) fn measurement(lowering: Form, median_ms: f64) -> Measurement {
    Measurement {
        lowering,
        flops: 1000,
        bytes: 100,
        median_ms,
        q1_ms: median_ms,
        q3_ms: median_ms,
        gflops: 1000.0 / (median_ms * 1e6),
        fraction_of_peak: 0.1,
        peak_bytes: 100,
        max_abs_error: 0.0,
        max_rel_error: 0.0,
    }
}

/// A configuration at `x` in `cell` that `winner` wins by 2× over the other two forms.
pub(super) fn won(x: f64, cell: &str, winner: Form) -> Configuration {
    let measurements = [DIRECT, COL2IM, SUBPIXEL]
        .into_iter()
        .map(|form| measurement(form, if form == winner { 1.0 } else { 2.0 }))
        .collect();
    let label = if cell.is_empty() { format!("stride {x}") } else { format!("stride {x}, {cell}") };
    let picks = vec![Pick {
        model: "cpu".into(),
        lowering: SUBPIXEL,
        slowdown: Some(if winner == SUBPIXEL { 1.0 } else { 2.0 }),
    }];
    Configuration { label, x, cell: cell.into(), measurements, skipped: vec![], winner: Some(winner), picks }
}

pub(super) fn study(x_label: &str, configurations: Vec<Configuration>) -> Study {
    let machine =
        Machine { cpu: "test".into(), simd: "none".into(), threads: 1, gemm_peak_gflops: 10.0, gemm_peak_size: 8 };
    let setup = StudySetup { machine, memory_bandwidth_gbs: 5.0, version: "0".into(), min_time_s: 0.1 };
    Study { name: "t".into(), x_label: x_label.into(), setup, configurations }
}
