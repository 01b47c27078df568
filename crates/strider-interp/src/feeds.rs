//! Input values for a run: seeded (value-stable: the same seed, input name and shape give the same
//! numbers on any machine) or read from `.npy` files.

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayD;
use strider_ir::{Graph, alloc, seeded};

/// Values uniform in [−1, 1) for every graph input not already in `given`; returns the names filled.
///
/// A graph input's shape comes from the model, so its buffer is reserved fallibly: an input the system
/// cannot provide memory for is an [`Error::Input`](strider_ir::Error::Input) naming it (the inputs
/// filled before it stay in `given`), never an abort.
pub fn fill_missing(
    graph: &Graph,
    seed: u64,
    given: &mut HashMap<String, ArrayD<f32>>,
) -> Result<Vec<String>, strider_ir::Error> {
    let mut filled = Vec::new();
    for &v in graph.inputs() {
        let value = graph.value(v);
        if given.contains_key(&value.name) {
            continue;
        }
        let shape = value.ty.shape.dims();
        let values = seeded::uniform_values(seeded::input_seed(seed, &value.name, shape), -1.0, 1.0);
        let array = alloc::try_array(shape, values)
            .map_err(|e| strider_ir::Error::Input { name: value.name.clone(), problem: e.to_string() })?;
        given.insert(value.name.clone(), array);
        filled.push(value.name.clone());
    }
    Ok(filled)
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

/// A graph input or initializer holding NaN or infinite values, which propagate to the outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// "input" or "initializer".
    pub kind: &'static str,
    /// The value's name.
    pub name: String,
    /// NaN elements.
    pub nan: usize,
    /// Infinite elements.
    pub infinite: usize,
    /// All elements.
    pub elements: usize,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` holds {} NaN and {} infinite values (of {})",
            self.kind, self.name, self.nan, self.infinite, self.elements
        )
    }
}

/// Every graph input (as given in `inputs`) and initializer that holds NaN or infinite values.
pub fn non_finite(graph: &Graph, inputs: &HashMap<String, ArrayD<f32>>) -> Vec<NonFinite> {
    let count = |kind: &'static str, name: &str, data: &ArrayD<f32>| {
        let nan = data.iter().filter(|v| v.is_nan()).count();
        let infinite = data.iter().filter(|v| v.is_infinite()).count();
        (nan + infinite > 0).then(|| NonFinite { kind, name: name.to_string(), nan, infinite, elements: data.len() })
    };
    let given = graph.inputs().iter().filter_map(|&v| {
        let name = &graph.value(v).name;
        inputs.get(name).and_then(|data| count("input", name, data))
    });
    let constants = graph
        .initializers()
        .iter()
        .filter_map(|i| i.data().ok().and_then(|d| count("initializer", &graph.value(i.value).name, d)));
    given.chain(constants).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use strider_ir::format::DataSpec;
    use strider_ir::{GraphBuilder, Limits, Op};

    #[test]
    fn non_finite_inputs_and_initializers_are_counted() {
        let mut b = GraphBuilder::new("g", Limits::default());
        b.input("x", vec![3]);
        let w = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, f32::INFINITY, f32::NEG_INFINITY]).unwrap();
        b.initializer("w", w.clone(), DataSpec::Inline(w.iter().copied().collect()));
        b.node("add", Op::Add, ["x", "w"], ["y"]);
        b.output("y");
        let g = b.finish().unwrap();
        let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![f32::NAN, 0.0, 2.0]).unwrap();
        let found = non_finite(&g, &HashMap::from([("x".to_string(), x)]));
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "input `x` holds 1 NaN and 0 infinite values (of 3)",
                "initializer `w` holds 0 NaN and 2 infinite values (of 3)"
            ]
        );
        assert!(non_finite(&g, &HashMap::new()).len() == 1);
    }

    #[test]
    fn seeded_inputs_are_stable_and_an_unallocatable_one_is_an_error() {
        let mut b = GraphBuilder::new("g", Limits { max_elements: 1 << 40 });
        b.input("x", vec![2, 3]);
        b.input("given", vec![1]);
        b.input("huge", vec![1 << 20, 1 << 20]);
        b.node("add", Op::Add, ["x", "given"], ["y"]);
        b.node("add2", Op::Add, ["huge", "given"], ["z"]);
        b.output("y");
        b.output("z");
        let g = b.finish().unwrap();
        let given = ArrayD::from_elem(IxDyn(&[1]), 5.0);
        let mut inputs = HashMap::from([("given".to_string(), given.clone())]);
        let err = fill_missing(&g, 4, &mut inputs).unwrap_err().to_string();
        assert_eq!(
            err,
            "input `huge`: cannot allocate 1099511627776 elements (4398046511104 bytes): the system refused the memory"
        );
        // `x`, filled before `huge` was refused, has the documented values; the given input is untouched.
        let x = &inputs["x"];
        assert_eq!(x.shape(), [2, 3]);
        let want = seeded::uniform(seeded::input_seed(4, "x", &[2, 3]), 6, -1.0, 1.0);
        assert_eq!(x.iter().copied().collect::<Vec<_>>(), want);
        assert_eq!(inputs["given"], given);
        assert!(!inputs.contains_key("huge"));
    }
}
