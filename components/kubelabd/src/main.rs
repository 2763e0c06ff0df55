//! `kubelabd`: the one static binary shipped in every guest image.
//!
//! Each cluster component is a library crate with a `run` entry point; this binary only parses
//! arguments, sets up logging and calls the component named by the subcommand. Subcommands:
//!
//! - `version`: print the build's version.
//! - `init`: the guest's PID 1 ([`init`]); also what runs when the kernel starts the binary
//!   as `/init` from the initramfs. Init sets up its own console logging.
//! - `apiserver`: the Kubernetes API server ([`apiserver`]).
//! - `kubeconfig`: a kubeconfig for any user, signed by an API server's cert dir.
//! - `store`: a member of the etcd-compatible store (`kubelab-store`), etcd's flags.
//!
//! (Each component adds its subcommand here as it lands.)

use clap::{Parser, Subcommand};

mod apiserver;
mod init;
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
    /// Run as the guest's init (PID 1 only).
    Init,
    /// Run the Kubernetes API server.
    Apiserver(apiserver::Args),
    /// Write a kubeconfig for a user, with a client certificate from an API server's CA.
    Kubeconfig(apiserver::KubeconfigArgs),
    /// Run a member of the etcd-compatible store.
    Store(Box<store::StoreArgs>),
}

/// Logging for the long-running components: `RUST_LOG` or `info`, to stderr.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    if init::invoked_as_init() {
        init::run();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("kubelabd {}", env!("CARGO_PKG_VERSION")),
        Command::Init => init::run(),
        Command::Apiserver(args) => {
            init_tracing();
            apiserver::run(args)?;
        }
        Command::Kubeconfig(args) => apiserver::kubeconfig(args)?,
        Command::Store(args) => store::run(*args)?,
    }
    Ok(())
}
