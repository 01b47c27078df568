//! Writing to stdout and stderr. A reader may stop reading early (`strider info M --json | head -1`):
//! the closed pipe drops the rest of the output quietly, where `print!` would panic, and the command
//! still finishes and exits with its own code (so `strider check … | head` still exits 1 when the
//! numbers differ).

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout. A closed pipe drops it; any other failure (a full disk) is an error.
pub fn print(text: &str) -> miette::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(miette::miette!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}

/// Prints a report as `--json` does in every command: one pretty-printed object on stdout.
pub fn print_json(report: &impl serde::Serialize) -> miette::Result<()> {
    let text =
        serde_json::to_string_pretty(report).map_err(|e| miette::miette!("cannot write the report as JSON: {e}"))?;
    print(&format!("{text}\n"))
}

/// Writes `text` and a newline to stderr. A failure is ignored: there is nowhere left to report it.
pub fn eprint_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
