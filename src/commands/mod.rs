//! One module per subcommand.

pub mod dot;
pub mod info;
pub mod run;
