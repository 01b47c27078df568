//! Input values for a run: seeded (value-stable: the same seed, input name and shape give the same
//! numbers on any machine) or read from `.npy` files.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use strider_ir::{Graph, seeded};

/// Values uniform in [−1, 1) for every graph input not already in `given`; returns the names filled.
pub fn fill_missing(graph: &Graph, seed: u64, given: &mut HashMap<String, ArrayD<f32>>) -> Vec<String> {
    let mut filled = Vec::new();
    for &v in graph.inputs() {
        let value = graph.value(v);
        if given.contains_key(&value.name) {
            continue;
        }
        let shape = value.ty.shape.dims();
        let data = seeded::uniform(seeded::input_seed(seed, &value.name, shape), value.ty.shape.numel(), -1.0, 1.0);
        let array = ArrayD::from_shape_vec(IxDyn(shape), data).expect("length equals the shape's element count");
        given.insert(value.name.clone(), array);
        filled.push(value.name.clone());
    }
    filled
}

/// Reads an input from a `.npy` file, checking its shape against the graph input's before reading data.
pub fn read_input(graph: &Graph, name: &str, path: &Path) -> Result<ArrayD<f32>, strider_ir::Error> {
    let problem = |problem: String| strider_ir::Error::Input { name: name.to_string(), problem };
    let v = graph
        .value_id(name)
        .filter(|v| graph.inputs().contains(v))
        .ok_or_else(|| problem("the graph has no input of this name".to_string()))?;
    strider_ir::npy::read_f32(path, graph.shape(v).dims()).map_err(problem)
}
