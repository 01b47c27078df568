//! One module per subcommand.

pub mod bench;
pub mod calibrate;
pub mod check;
pub mod dot;
pub mod explore;
pub mod info;
pub mod optimize;
pub mod run;
pub mod study;
pub mod tune;
