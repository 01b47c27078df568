//! Friendly reports for bad input: the file, line and column, the offending text, which node, and what
//! was expected versus found.

use std::path::Path;

use miette::{Diagnostic, NamedSource, SourceSpan};
use strider_ir::{Error, Graph, Limits, format};

/// A located error in a model file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct ModelDiagnostic {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
}

/// Byte offset of a 1-based (line, column) in `text`.
fn offset(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (start + col.saturating_sub(1)).min(text.len())
}

/// Turns an IR error about `text` (read from `path`) into a report that points into the text.
pub fn locate(path: &Path, text: &str, err: Error) -> miette::Report {
    let position = match &err {
        Error::Syntax { line, col, .. } => Some((*line, *col)),
        other => other.subject().and_then(|s| format::locate(text, &s)),
    };
    let (span, label) = match position {
        Some((line, col)) => {
            let at = offset(text, line, col);
            let rest = &text[at..];
            // A quoted name is underlined whole; anything else up to the next delimiter.
            let len = match rest.strip_prefix('"') {
                Some(inner) => inner.find('"').map_or(1, |end| end + 2),
                None => rest.find([',', ')', ']', '\n']).unwrap_or(0).max(1),
            };
            (Some(SourceSpan::from((at, len))), "here".to_string())
        }
        None => (None, String::new()),
    };
    let help = match &err {
        Error::Syntax { .. } => {
            Some("the model format is described in README.md, under 'The model format'".to_string())
        }
        Error::TooLarge { .. } => Some("raise the limit with --max-elements if this size is intended".to_string()),
        _ => None,
    };
    let message = match position {
        Some((line, col)) => format!("{}:{line}:{col}: {err}", path.display()),
        None => format!("{}: {err}", path.display()),
    };
    miette::Report::new(ModelDiagnostic {
        message,
        src: NamedSource::new(path.display().to_string(), text.to_string()),
        span,
        label,
        help,
    })
}

/// Loads a model, reporting any problem with its location in the file.
pub fn load_model(path: &Path, limits: &Limits) -> miette::Result<Graph> {
    let text = std::fs::read_to_string(path).map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    format::parse(&text, base, limits).map_err(|e| locate(path, &text, e))
}

/// An ONNX problem, with the file it is about and a hint where one helps.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct OnnxDiagnostic {
    message: String,
    #[help]
    help: Option<String>,
}

/// Turns an ONNX import or export error about `path` into a report.
pub fn onnx(path: &Path, err: strider_onnx::Error) -> miette::Report {
    use strider_onnx::Error as E;
    let help = match &err {
        E::Unsupported(_) => Some("README.md lists the ONNX ops Strider imports (section ONNX)".to_string()),
        E::Decode { .. } | E::NotAModel { .. } => {
            Some("the file may be truncated or not an ONNX model; `python -m onnx.checker` tells more".to_string())
        }
        E::Graph(Error::TooLarge { .. }) => {
            Some("raise the limit with --max-elements if this size is intended".to_string())
        }
        _ => None,
    };
    // Errors that already name their file are not prefixed again.
    let message = match &err {
        E::Io { .. } | E::Decode { .. } | E::NotAModel { .. } => err.to_string(),
        _ => format!("{}: {err}", path.display()),
    };
    miette::Report::new(OnnxDiagnostic { message, help })
}
