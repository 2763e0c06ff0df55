//! `kubelabd`: the one static binary shipped in every guest image.
//!
//! Each cluster component is a library crate with a `run` entry point; this binary only parses
//! arguments, sets up logging and calls the component named by the subcommand. Subcommands:
//!
//! - `version`: print the build's version.
//! - `store`: a member of the etcd-compatible store (`kubelab-store`), etcd's flags.
//!
//! (Each component adds its subcommand here as it lands: `init`, `store`, `apiserver`, ...)

use clap::{Parser, Subcommand};

mod store;

#[derive(Parser)]
#[command(name = "kubelabd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version and exit.
    Version,
    /// Run a member of the etcd-compatible store.
    Store(Box<store::StoreArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("kubelabd {}", env!("CARGO_PKG_VERSION")),
        Command::Store(args) => store::run(*args)?,
    }
    Ok(())
}
