//! Exit codes, so that a script can tell "the numbers differ" from "could not run" from "bad usage".
//!
//! Commands return `miette` reports; the two marker errors below say which code a report exits with,
//! and everything else (an invalid model, weight or input file, a failed run or write) exits with
//! [`INVALID`]. Clap's own usage errors exit with 2 as well.

use miette::Diagnostic;

/// A check or comparison ran and found a difference.
pub const MISMATCH: u8 = 1;
/// The command line asks for something impossible (an option value, a name the model lacks).
pub const USAGE: u8 = 2;
/// The model or an input is invalid, or something could not be read, run or written.
pub const INVALID: u8 = 3;

/// The table shown at the end of `--help`.
pub const HELP: &str = "Exit codes:
  0  success
  1  a check or comparison failed (the numbers differ)
  2  usage error (an option value, or a name the model does not have)
  3  the model or an input is invalid, or it could not be read, run or written";

/// A check ran and some outputs differ from the original's: exits with [`MISMATCH`].
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// A usage mistake found after parsing (a name the model lacks): exits with [`USAGE`].
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
pub struct Usage(pub String);

/// The exit code a failed command's report exits with.
pub fn code(report: &miette::Report) -> u8 {
    if report.downcast_ref::<Mismatch>().is_some() {
        MISMATCH
    } else if report.downcast_ref::<Usage>().is_some() {
        USAGE
    } else {
        INVALID
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_marker_has_its_code_and_anything_else_is_invalid() {
        assert_eq!(code(&miette::Report::new(Mismatch("differs".into()))), 1);
        assert_eq!(code(&miette::Report::new(Usage("no such node".into()))), 2);
        assert_eq!(code(&miette::miette!("cannot read model.ron")), 3);
    }
}
