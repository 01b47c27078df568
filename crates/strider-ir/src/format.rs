//! The RON model format: the file-level structs, loading (with located syntax errors), and saving in a
//! stable layout (load → save → load gives the same graph and the same text).
//!
//! ```ron
//! (
//!     name: "tiny",
//!     inputs: [(name: "x", shape: [1, 1, 2, 2])],
//!     initializers: [(name: "k", shape: [1, 1, 2, 2], data: Inline([0.0, 1.0, 2.0, 3.0]))],
//!     nodes: [(name: "up", op: ConvTranspose(), inputs: ["x", "k"], outputs: ["y"])],
//!     outputs: ["y"],
//! )
//! ```

use std::fmt::Write as _;
use std::path::Path;

use ron::extensions::Extensions;
use ron::ser::PrettyConfig;
use serde::{Deserialize, Serialize};

pub use crate::data::DataSpec;
use crate::error::{Error, Result, Subject};
use crate::graph::{Graph, GraphBuilder, Limits};
use crate::op::Op;
use crate::output;
use crate::shape::Shape;

/// A whole model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Graph name.
    pub name: String,
    /// Values fed at run time.
    pub inputs: Vec<InputDecl>,
    /// Constant tensors (weights).
    #[serde(default)]
    pub initializers: Vec<InitializerDecl>,
    /// Op nodes, in any order.
    pub nodes: Vec<NodeDecl>,
    /// Values the graph returns.
    pub outputs: Vec<String>,
}

/// A graph input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDecl {
    /// Value name.
    pub name: String,
    /// Static shape.
    pub shape: Vec<usize>,
}

/// An initializer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitializerDecl {
    /// Value name.
    pub name: String,
    /// Static shape.
    pub shape: Vec<usize>,
    /// Where the numbers come from.
    pub data: DataSpec,
}

/// A node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    /// Unique node name.
    pub name: String,
    /// Op and attributes.
    pub op: Op,
    /// Input value names, in the op's order.
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
}

fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME)
        .with_recursion_limit(64)
}

/// Parses model text. Relative `.npy` paths resolve against `base_dir`.
pub fn parse(text: &str, base_dir: &Path, limits: &Limits) -> Result<Graph> {
    let file: ModelFile = ron_options().from_str(text).map_err(|e| Error::Syntax {
        message: e.code.to_string(),
        line: e.span.start.line,
        col: e.span.start.col,
    })?;
    build(&file, base_dir, limits)
}

/// Reads and parses a model file.
pub fn load(path: &Path, limits: &Limits) -> Result<Graph> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(&text, path.parent().unwrap_or(Path::new(".")), limits)
}

/// Builds the graph a model file describes.
pub fn build(file: &ModelFile, base_dir: &Path, limits: &Limits) -> Result<Graph> {
    let mut b = GraphBuilder::new(&file.name, *limits);
    for i in &file.inputs {
        b.input(&i.name, i.shape.clone());
    }
    for i in &file.initializers {
        limits.check(&i.name, &Shape(i.shape.clone()))?;
        if i.data.is_deferred() {
            // Generated or read on first use: `info` never allocates or reads it.
            b.deferred_initializer(&i.name, i.shape.clone(), i.data.clone(), base_dir);
            continue;
        }
        let data = i
            .data
            .materialize(&i.shape, base_dir)
            .map_err(|problem| Error::Initializer { name: i.name.clone(), problem })?;
        b.initializer(&i.name, data, i.data.clone());
    }
    for n in &file.nodes {
        b.node(&n.name, n.op.clone(), n.inputs.iter().cloned(), n.outputs.iter().cloned());
    }
    for o in &file.outputs {
        b.output(o);
    }
    b.finish()
}

/// The model file that describes `graph`.
pub fn to_model_file(graph: &Graph) -> ModelFile {
    let name = |v| graph.value(v).name.clone();
    ModelFile {
        name: graph.name().to_string(),
        inputs: graph.inputs().iter().map(|&v| InputDecl { name: name(v), shape: graph.shape(v).0.clone() }).collect(),
        initializers: graph
            .initializers()
            .iter()
            .map(|i| InitializerDecl {
                name: name(i.value),
                shape: graph.shape(i.value).0.clone(),
                data: i.spec.clone(),
            })
            .collect(),
        nodes: graph
            .nodes()
            .map(|(_, n)| NodeDecl {
                name: n.name.clone(),
                op: n.op.clone(),
                inputs: n.inputs.iter().map(|&v| name(v)).collect(),
                outputs: n.outputs.iter().map(|&v| name(v)).collect(),
            })
            .collect(),
        outputs: graph.outputs().iter().map(|&v| name(v)).collect(),
    }
}

/// One item on one line: `(name: "x", shape: [1, 2])`.
fn one_line<T: Serialize>(value: &T) -> String {
    let config = PrettyConfig::new()
        .compact_arrays(true)
        .compact_structs(true)
        .extensions(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME);
    // Serializing these plain structs cannot fail: no maps with non-string keys, no NaN-sensitive types.
    ron_options().to_string_pretty(value, config).unwrap_or_else(|e| format!("<unserializable: {e}>"))
}

/// An op in RON syntax, e.g. `ConvTranspose(strides: [2, 2])`.
pub fn op_to_ron(op: &Op) -> String {
    one_line(op)
}

/// Model text in the stable layout: one input, initializer or node per line.
pub fn to_ron(file: &ModelFile) -> String {
    fn list<T: Serialize>(out: &mut String, key: &str, items: &[T]) {
        let _ = writeln!(out, "    {key}: [");
        for item in items {
            let _ = writeln!(out, "        {},", one_line(item));
        }
        let _ = writeln!(out, "    ],");
    }
    let mut out = String::from("(\n");
    let _ = writeln!(out, "    name: {},", one_line(&file.name));
    list(&mut out, "inputs", &file.inputs);
    list(&mut out, "initializers", &file.initializers);
    list(&mut out, "nodes", &file.nodes);
    let _ = writeln!(out, "    outputs: {},", one_line(&file.outputs));
    out.push_str(")\n");
    out
}

/// Initializers with more elements than this are written to `.npy` files rather than inline.
pub const INLINE_LIMIT: usize = 16;

/// Whether `save` writes an initializer to a `.npy` file: the model text holds only small, finite
/// inline lists and generators; data read from a `.npy` file is copied, so the saved model does not
/// depend on where the original's files were.
fn goes_to_file(spec: &DataSpec) -> bool {
    match spec {
        DataSpec::Inline(values) => values.len() > INLINE_LIMIT || values.iter().any(|v| !v.is_finite()),
        DataSpec::Npy(_) => true,
        DataSpec::Uniform { .. } | DataSpec::Normal { .. } | DataSpec::Fill(_) | DataSpec::Bilinear => false,
    }
}

/// Writes `graph` as model text to `path`, with its weights (initializers read from `.npy` files, and
/// inline ones over [`INLINE_LIMIT`] elements or holding NaN or infinities) in the folder
/// `<stem>.weights/` beside it, referenced relative to the model file. A missing destination folder is
/// created. The model and the weights folder are written complete under temporary names in the
/// destination folder, then renamed into place; the previous weights folder is removed only then,
/// so no stale files remain. While the two are swapped the model is briefly absent, never paired with
/// another write's weights.
pub fn save(graph: &Graph, path: &Path) -> Result<()> {
    let model_name = output::file_name(path, "model")?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    output::create_folder(dir)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(model_name);
    let weights_name = format!("{stem}.weights");
    let mut staged = output::Staged::new(dir);
    let mut weights_folder = None;
    let mut names = output::FileNames::new();
    let mut file = to_model_file(graph);
    for (decl, init) in file.initializers.iter_mut().zip(graph.initializers()) {
        if !goes_to_file(&decl.data) {
            continue;
        }
        let folder = match &weights_folder {
            Some(folder) => folder,
            None => weights_folder.insert(staged.folder(&weights_name, "weights folder")?),
        };
        let file_name = names.next(&decl.name, "npy");
        output::write_npy_new(&folder.join(&file_name), init.data()?, &format!("weight `{}`", decl.name))?;
        decl.data = DataSpec::Npy(format!("{weights_name}/{file_name}"));
    }
    let text = to_ron(&file);
    let staged_model = staged.file(model_name, "model", |out| std::io::Write::write_all(out, text.as_bytes()))?;
    let weights_path = dir.join(&weights_name);
    if let Some(folder) = &weights_folder {
        // The old model goes first, so that it is never read with the new weights.
        staged.move_aside(path, "model")?;
        staged.move_aside(&weights_path, "weights folder")?;
        output::rename(folder, &weights_path, "weights folder")?;
        output::rename(&staged_model, path, "model")?;
    } else {
        output::rename(&staged_model, path, "model")?;
        staged.move_aside(&weights_path, "weights folder")?;
    }
    staged.committed();
    Ok(())
}

/// 1-based line and column where model text defines `subject` (`name: "…"`), else where it first
/// mentions it as a string.
pub fn locate(text: &str, subject: &Subject) -> Option<(usize, usize)> {
    let (name, nth) = match subject {
        Subject::Node(n) | Subject::Value(n) => (n, 0),
        Subject::Duplicate(n) => (n, 1),
    };
    let quoted = format!("\"{name}\"");
    let defining: Vec<usize> =
        text.match_indices(&quoted).map(|(i, _)| i).filter(|&i| text[..i].trim_end().ends_with("name:")).collect();
    let anywhere: Vec<usize> = text.match_indices(&quoted).map(|(i, _)| i).collect();
    let offset = defining.get(nth).or(anywhere.get(nth)).or(defining.first()).or(anywhere.first()).copied()?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    Some((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"(name: "tiny", inputs: [(name: "x", shape: [1, 1, 2, 2])],
 initializers: [(name: "k", shape: [1, 1, 2, 2], data: Inline([0.0, 1.0, 2.0, 3.0]))],
 nodes: [(name: "up", op: ConvTranspose(strides: [1, 1]), inputs: ["x", "k"], outputs: ["y"])],
 outputs: ["y"])"#;

    #[test]
    fn the_issue_example_parses_and_round_trips() {
        let g = parse(TINY, Path::new("."), &Limits::default()).unwrap();
        assert_eq!(g.shape(g.value_id("y").unwrap()).dims(), [1, 1, 3, 3]);
        let text = to_ron(&to_model_file(&g));
        let again = parse(&text, Path::new("."), &Limits::default()).unwrap();
        assert_eq!(to_ron(&to_model_file(&again)), text);
        assert!(text.contains(r#"op: ConvTranspose(strides: [1, 1])"#), "{text}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let bad = TINY.replacen("[1, 1, 2, 2])],", "[1, 1 2, 2])],", 1);
        match parse(&bad, Path::new("."), &Limits::default()) {
            Err(Error::Syntax { line, col, message }) => assert_eq!((line, col), (1, 50), "{message}"),
            other => panic!("{other:?}"),
        }
        let unknown = TINY.replace("strides", "stride");
        match parse(&unknown, Path::new("."), &Limits::default()) {
            Err(Error::Syntax { message, line: 3, .. }) => assert!(message.contains("stride"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locate_finds_the_definition() {
        assert_eq!(locate(TINY, &Subject::Node("up".into())), Some((3, 17)));
        assert_eq!(locate(TINY, &Subject::Value("y".into())), Some((3, 89)));
    }

    #[test]
    fn save_moves_large_and_non_finite_weights_to_files_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = GraphBuilder::new("g", Limits::default());
        b.input("x", vec![2]);
        let odd = ndarray::ArrayD::from_shape_vec(vec![2], vec![f32::INFINITY, f32::NAN]).unwrap();
        b.initializer("odd", odd.clone(), DataSpec::Inline(odd.iter().copied().collect()));
        b.initializer("small", ndarray::ArrayD::from_elem(vec![2], 0.5), DataSpec::Inline(vec![0.5, 0.5]));
        b.node("a", Op::Add, ["x", "odd"], ["t"]).node("m", Op::Mul, ["t", "small"], ["y"]).output("y");
        let g = b.finish().unwrap();
        let path = dir.path().join("sub/m.ron");
        save(&g, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#"(name: "odd", shape: [2], data: Npy("m.weights/odd.npy"))"#), "{text}");
        assert!(text.contains(r#"(name: "small", shape: [2], data: Inline([0.5, 0.5]))"#), "{text}");
        let again = load(&path, &Limits::default()).unwrap();
        let data = again.initializers()[0].data().unwrap();
        assert!(data[0] == f32::INFINITY && data[1].is_nan());
        // Saved again as it was loaded: the same text, and the weights copied beside the new file.
        let copy = dir.path().join("copy.ron");
        save(&again, &copy).unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), text.replace("m.weights", "copy.weights"));
    }

    /// A graph adding a 20-element weight of `value`s (saved to a file: over [`INLINE_LIMIT`]).
    fn weighted(value: f32) -> Graph {
        let mut b = GraphBuilder::new("g", Limits::default());
        b.input("x", vec![20]);
        b.initializer("w", ndarray::ArrayD::from_elem(vec![20], value), DataSpec::Inline(vec![value; 20]));
        b.node("a", Op::Add, ["x", "w"], ["y"]).output("y");
        b.finish().unwrap()
    }

    #[test]
    fn a_write_interrupted_before_its_renames_leaves_the_previous_model_with_its_weights() {
        // Issue 10: a write interrupted between its temporary files and the renames must leave the previous
        // model loadable with its own weights, whichever rename fails.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ron");
        save(&weighted(1.0), &path).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        for failing in ["weights folder", "model"] {
            output::fail_rename::set(Some(failing));
            let err = save(&weighted(2.0), &path).unwrap_err();
            output::fail_rename::set(None);
            assert!(err.to_string().contains(&format!("cannot write {failing}")), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "{failing}");
            let again = load(&path, &Limits::default()).unwrap();
            assert_eq!(again.initializers()[0].data().unwrap().as_slice().unwrap(), &[1.0; 20], "{failing}");
            let mut entries: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            entries.sort();
            assert_eq!(entries, ["m.ron", "m.weights"], "{failing}");
        }
        // Uninterrupted, the new weights replace the old.
        save(&weighted(2.0), &path).unwrap();
        let again = load(&path, &Limits::default()).unwrap();
        assert_eq!(again.initializers()[0].data().unwrap().as_slice().unwrap(), &[2.0; 20]);
    }

    #[test]
    fn npy_weights_are_checked_at_load_and_read_on_first_use() {
        // Issue 10: `info` read every weight file whole. Loading checks a file's header and length only.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ron");
        save(&weighted(3.0), &path).unwrap();
        let g = load(&path, &Limits::default()).unwrap();
        assert!(!g.initializers()[0].is_loaded());
        // The data is read on first use: rewritten since loading (same header and length), the new numbers show.
        let weight = dir.path().join("m.weights/w.npy");
        output::replace_npy(&weight, &ndarray::ArrayD::from_elem(vec![20], 4.0), "weight").unwrap();
        assert_eq!(g.initializers()[0].data().unwrap().as_slice().unwrap(), &[4.0; 20]);
        assert!(g.initializers()[0].is_loaded());
        // A file that no longer fits is an error naming the initializer, at load or at first use.
        let g = load(&path, &Limits::default()).unwrap();
        output::replace_npy(&weight, &ndarray::ArrayD::from_elem(vec![21], 4.0), "weight").unwrap();
        let err = g.initializers()[0].data().unwrap_err().to_string();
        assert!(err.starts_with("initializer `w`: ") && err.contains("has shape [21], expected [20]"), "{err}");
        let err = load(&path, &Limits::default()).unwrap_err().to_string();
        assert!(err.starts_with("initializer `w`: ") && err.contains("has shape [21], expected [20]"), "{err}");
    }

    #[test]
    fn duplicates_point_at_the_second_definition() {
        let text = "(name: \"a\")\n(name: \"a\")";
        assert_eq!(locate(text, &Subject::Duplicate("a".into())), Some((2, 8)));
        assert_eq!(locate(text, &Subject::Node("a".into())), Some((1, 8)));
    }
}
