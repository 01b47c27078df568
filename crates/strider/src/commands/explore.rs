//! `strider explore`: every lowering of every ConvTranspose (and Upsample) with its cost under each
//! cost model, the pick of each model, and the e-graph's growth per iteration.

use std::fmt::Write as _;

use strider_check::numbers::{bytes, count, grouped, si};
use strider_check::table::{Align, Table};
use strider_ir::{Graph, Limits};
use strider_rewrite::cost::{CostModel, Flops, Memory, Target};
use strider_rewrite::explore::{Exploration, NamedModel, explore};
use strider_rewrite::{Extractor, RunLimits};

use crate::exit::Usage;

/// Explores `graph` under flops, memory, each target and the measured model (nanoseconds) if given;
/// variants over `limits` are excluded.
pub fn run(
    graph: &Graph,
    targets: &[Target],
    measured: Option<&dyn CostModel>,
    run_limits: &RunLimits,
    limits: &Limits,
    extractor: Extractor,
) -> Exploration {
    let (flops, memory) = (Flops::default(), Memory);
    let mut models: Vec<NamedModel> = vec![
        NamedModel { name: "flops".into(), model: &flops as &dyn CostModel },
        NamedModel { name: "memory".into(), model: &memory },
    ];
    models.extend(targets.iter().map(|t| NamedModel { name: t.name.clone(), model: t }));
    models.extend(measured.map(|model| NamedModel { name: "measured ns".into(), model }));
    explore(graph, &models, run_limits, limits, extractor)
}

/// The exploration as a text report.
pub fn render(e: &Exploration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model `{}`: {}", e.model, count(e.nodes.len() as u128, "ConvTranspose/Upsample node"));
    let _ = writeln!(out, "e-graph with every rule ({}):", e.stop_reason);
    let mut sizes =
        Table::new([("iteration", Align::Right), ("e-nodes", Align::Right), ("e-classes", Align::Right)]).indented(2);
    for (i, strider_rewrite::pipeline::IterationSize { nodes, classes }) in e.sizes.iter().enumerate() {
        sizes.row([i.to_string(), grouped(*nodes as u128), grouped(*classes as u128)]);
    }
    out.push_str(&sizes.text());
    out.push_str(&render_whole(e));
    for node in &e.nodes {
        let _ = writeln!(out);
        let _ = writeln!(out, "{} = {} → {:?}", node.node, node.op, node.output);
        let columns =
            [("lowering", Align::Left), ("ops", Align::Left), ("FLOPs", Align::Right), ("bytes", Align::Right)]
                .map(|(title, align)| (title.to_string(), align))
                .into_iter()
                .chain(e.models.iter().map(|m| (m.clone(), Align::Right)));
        let mut table = Table::new(columns).indented(2);
        for v in &node.variants {
            let ops = v
                .ops
                .iter()
                .map(|o| if o.count > 1 { format!("{}×{}", o.op, o.count) } else { o.op.clone() })
                .collect::<Vec<_>>();
            let mut row = vec![v.lowering.to_string(), ops.join(" "), si(v.flops as f64), bytes(v.bytes as u128)];
            row.extend(v.costs.iter().map(|c| c.cost.map_or("—".to_string(), si)));
            table.row(row);
        }
        out.push_str(&table.text());
        for v in node.variants.iter().filter(|v| v.excluded.is_some()) {
            let _ = writeln!(out, "  excluded {}: {}", v.lowering, v.excluded.as_deref().unwrap_or_default());
        }
        let picks: Vec<String> = node
            .picks
            .iter()
            .map(|p| match p.lowering {
                Some(l) => format!("{} → {l}", p.model),
                None => format!("{} → none (unsupported)", p.model),
            })
            .collect();
        let _ = writeln!(out, "  picks: {}", picks.join(", "));
        for d in &node.declined {
            let _ = writeln!(out, "  declined: {} on `{}`: {}", d.rule, d.value, d.reason);
        }
    }
    out
}

/// The whole model's extraction under each cost model; with the exact extractor, the greedy cost
/// beside it and whether the optimum was proven.
fn render_whole(e: &Exploration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "whole model, {} extraction:", e.extractor);
    let exact = e.extractor == Extractor::Exact;
    let mut columns = vec![("model", Align::Left), ("cost", Align::Right)];
    if exact {
        columns.extend([("greedy", Align::Right), ("gap", Align::Right), ("", Align::Left)]);
    }
    let mut table = Table::new(columns).indented(2);
    for w in &e.whole {
        let mut row = vec![w.model.clone()];
        match &w.extraction {
            Some(x) => {
                row.push(si(x.cost));
                if let Some(greedy) = x.greedy_cost.filter(|_| exact) {
                    row.push(si(greedy));
                    row.push(si(greedy - x.cost));
                    row.push(x.fallback.as_ref().map_or("optimal".to_string(), |why| format!("greedy kept: {why}")));
                }
            }
            None => row.push("unsupported".into()),
        }
        row.resize(if exact { 5 } else { 2 }, String::new());
        table.row(row);
    }
    out.push_str(&table.text());
    out
}

/// Matrices up to this many rows and columns are printed as a grid.
const GRID_LIMIT: usize = 32;

/// The sparse matrix C of ConvTranspose node `name` (ConvTranspose(x) = Cᵀ·vec(x)): a summary, the
/// matrix itself when small, and a MatrixMarket file when `out` is given. A matrix storing more than
/// `max_nnz` elements is refused before it is built (building costs tens of bytes per element).
pub fn matrix(graph: &Graph, name: &str, out: Option<&std::path::Path>, max_nnz: usize) -> miette::Result<String> {
    use strider_ir::Op;
    use strider_ir::op::ConvMatrixAttrs;
    let (_, node) = graph
        .nodes()
        .find(|(_, n)| n.name == name)
        .ok_or_else(|| Usage(format!("--matrix: no node named `{name}` (see `strider info`)")))?;
    let Op::ConvTranspose(attrs) = &node.op else {
        return Err(Usage(format!("--matrix: node `{name}` is a {}, not a ConvTranspose", node.op.name())).into());
    };
    let w = graph
        .initializer(node.inputs[1])
        .ok_or_else(|| miette::miette!("the weight of `{name}` is computed, not an initializer"))?;
    let x = graph.shape(node.inputs[0]);
    let conv = ConvMatrixAttrs { input_shape: x.dims()[2..].to_vec(), conv_transpose: attrs.clone() };
    let nnz = conv.nnz(graph.shape(node.inputs[1])).map_err(|e| miette::miette!("{e}"))?;
    if nnz > max_nnz {
        return Err(miette::miette!(
            "C for `{name}` stores {} elements, more than --max-matrix-nnz {}; raise it to build C anyway",
            grouped(nnz as u128),
            grouped(max_nnz as u128)
        ));
    }
    let c = strider_interp::kernels::conv_matrix(&conv, &w.data().map_err(|e| miette::miette!("{e}"))?.view())
        .map_err(|e| miette::miette!("{e}"))?;
    let mut text = String::new();
    let (rows, cols) = (c.rows(), c.cols());
    let _ = writeln!(
        text,
        "C for `{name}`: {rows} × {cols} (rows: input channels × positions; columns: output channels × positions)"
    );
    let _ = writeln!(
        text,
        "stored elements: {} of {} ({:.3}% dense); ConvTranspose(x) = Cᵀ·vec(x) for each batch element",
        grouped(c.nnz() as u128),
        grouped(rows as u128 * cols as u128),
        100.0 * c.nnz() as f64 / (rows as f64 * cols as f64).max(1.0)
    );
    if rows <= GRID_LIMIT && cols <= GRID_LIMIT {
        let dense = c.to_dense();
        for r in 0..rows {
            let cells: Vec<String> = (0..cols)
                .map(|j| if c.get(r, j).is_some() { format!("{:>6.3}", dense[[r, j]]) } else { format!("{:>6}", ".") })
                .collect();
            let _ = writeln!(text, "{}", cells.join(" "));
        }
    }
    if let Some(path) = out {
        sprs::io::write_matrix_market(path, &c).map_err(|e| miette::miette!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(text, "written to {} (MatrixMarket)", path.display());
    }
    Ok(text)
}
