//! `strider info`: per node op, attributes, output shape, parameters and FLOPs, with totals.

use std::fmt::Write as _;

use strider_ir::Graph;

/// The info table as text.
pub fn render(graph: &Graph) -> String {
    let mut rows = vec![["node", "op", "attributes", "output", "params", "FLOPs"].map(String::from)];
    let (mut params, mut flops) = (0usize, 0u64);
    for (_, node) in graph.nodes() {
        let outputs: Vec<String> = node.outputs.iter().map(|&v| graph.shape(v).to_string()).collect();
        let (p, f) = (graph.node_parameters(node), graph.node_flops(node));
        params += p;
        flops += f;
        rows.push([
            node.name.clone(),
            node.op.name().to_string(),
            node.op.attributes_summary(),
            outputs.join(" "),
            p.to_string(),
            f.to_string(),
        ]);
    }
    rows.push(["total".into(), String::new(), String::new(), String::new(), params.to_string(), flops.to_string()]);
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let shape_list = |ids: &[strider_ir::ValueId]| {
        ids.iter().map(|&v| format!("{} {}", graph.value(v).name, graph.shape(v))).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(
        out,
        "graph `{}`: {} nodes, {} initializers",
        graph.name(),
        rows.len() - 2,
        graph.initializers().len()
    );
    let _ = writeln!(out, "inputs:  {}", shape_list(graph.inputs()));
    let _ = writeln!(out, "outputs: {}", shape_list(graph.outputs()));
    let peak = strider_interp::memory::estimate_peak(graph);
    let at = peak.node.map_or_else(|| "inputs and weights".to_string(), |n| format!("while `{n}` runs"));
    let _ = writeln!(out, "estimated peak memory: {} bytes ({at})", peak.bytes);
    let _ = writeln!(out);
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            if i >= 4 {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            } else {
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
