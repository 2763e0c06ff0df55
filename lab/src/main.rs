//! `kubelab`: the lab command line. Parses arguments and calls into the `kubelab` library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kubelab",
    version,
    about = "Reproducible QEMU labs for kubelab clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version and exit.
    Version,
    /// Build the guest image or regenerate its lock.
    #[command(subcommand)]
    Image(kubelab::image::cli::ImageCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("kubelab {}", env!("CARGO_PKG_VERSION")),
        Command::Image(command) => kubelab::image::cli::run(command)?,
    }
    Ok(())
}
