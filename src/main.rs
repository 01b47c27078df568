//! The `strider` command line.

mod commands;
mod diagnostic;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use strider_ir::Limits;

/// Strider: an optimizer for operator graphs built around transposed convolution.
///
/// Models are RON files (the format is described in README.md). Every command loads the model, checks it and infers every
/// shape first; a problem is reported with its file, line and column.
#[derive(Parser)]
#[command(name = "strider", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Execute a model in the reference interpreter and summarize each output.
    ///
    /// Inputs not given with --input are filled with seeded uniform values in [-1, 1): the same seed,
    /// input name and shape give the same values on any machine.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        /// Feed a graph input from a float32 .npy file (repeatable).
        #[arg(long = "input", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Write each graph output to DIR/<output name>.npy.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Seed for inputs not given with --input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print each node's op, attributes, output shape, parameter count and FLOPs, with totals.
    Info {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the graph as Graphviz DOT (pipe into `dot -Tsvg`), shapes on the edges.
    Dot {
        #[command(flatten)]
        model: ModelArgs,
    },
}

#[derive(Args)]
struct ModelArgs {
    /// The model file (.ron).
    model: PathBuf,
    /// Refuse any tensor with more elements than this.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_ELEMENTS)]
    max_elements: usize,
}

impl ModelArgs {
    fn load(&self) -> miette::Result<strider_ir::Graph> {
        diagnostic::load_model(&self.model, &Limits { max_elements: self.max_elements })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Long messages stay on one line so that they can be searched and compared.
    let _ = miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    let result = match cli.command {
        Command::Run { model, inputs, out, seed } => {
            model.load().and_then(|g| commands::run::run(&g, &commands::run::RunOptions { inputs, out, seed }))
        }
        Command::Info { model } => model.load().map(|g| print!("{}", commands::info::render(&g))),
        Command::Dot { model } => model.load().map(|g| print!("{}", commands::dot::render(&g))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
