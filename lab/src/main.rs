//! `kubelab`: the lab command line. Parses arguments, sets up logging and calls into the
//! `kubelab` library (see `cli/` for one module per command group).

mod cli;

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
    /// Boot a lab from a topology file; returns once every node answers SSH.
    Up(cli::up::UpArgs),
    /// Remove a lab: its VMs, namespace, bridges, taps and state.
    Down {
        /// Lab name.
        lab: String,
    },
    /// Show running labs, or one lab's nodes.
    Status {
        /// Lab name; all labs when left out.
        lab: Option<String>,
    },
    /// Run a command on a node over SSH; its output and exit code are passed through.
    Exec {
        /// Lab name.
        lab: String,
        /// Node name.
        node: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive SSH session to a node.
    Ssh {
        /// Lab name.
        lab: String,
        /// Node name.
        node: String,
    },
    /// Inject a fault into a running lab.
    Fault {
        /// Lab name.
        lab: String,
        #[command(subcommand)]
        fault: cli::fault::FaultCommand,
    },
    /// Build the guest image or regenerate its lock.
    #[command(subcommand)]
    Image(kubelab::image::cli::ImageCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            kubelab::outln!("kubelab {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Up(args) => cli::up::run(&args),
        Command::Down { lab } => cli::lab::down(&lab),
        Command::Status { lab } => cli::lab::status(lab.as_deref()),
        Command::Exec { lab, node, command } => cli::lab::exec(&lab, &node, &command),
        Command::Ssh { lab, node } => cli::lab::ssh(&lab, &node),
        Command::Fault { lab, fault } => cli::fault::run(&lab, fault),
        Command::Image(command) => kubelab::image::cli::run(command)
            .map(|()| 0)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("kubelab: error: {}", cli::chain(err.as_ref()));
            std::process::exit(cli::exit_code(err.as_ref()));
        }
    }
}
