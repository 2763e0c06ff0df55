//! `kubelab image build|lock`: the command-line face of the image builder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{BuildOptions, Lock, Recipe, apt, build, default_cache_dir, kubelabd};

/// `kubelab image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the guest image (or find it in the cache); prints its directory, then its hash.
    Build(BuildArgs),
    /// Regenerate the lock (images/debian.lock) from the recipe (images/guest.toml) with apt.
    Lock(LockArgs),
}

/// Where the recipe and lock are.
#[derive(Debug, Args)]
pub struct Sources {
    /// Repository checkout holding images/ (default: the one this kubelab was built from).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

impl Sources {
    fn repo(&self) -> PathBuf {
        self.repo
            .clone()
            .unwrap_or_else(kubelabd::default_workspace)
    }
}

/// `kubelab image build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    sources: Sources,
    /// Image cache (default: $KUBELAB_CACHE or /var/cache/kubelab).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Use this static kubelabd instead of building it from the repository.
    #[arg(long, value_name = "PATH")]
    kubelabd: Option<PathBuf>,
}

/// `kubelab image lock`
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    sources: Sources,
}

/// Runs an image subcommand.
pub fn run(command: ImageCommand) -> anyhow::Result<()> {
    match command {
        ImageCommand::Build(args) => {
            let started = Instant::now();
            let repo = args.sources.repo();
            let kubelabd = match args.kubelabd {
                Some(path) => path,
                None => {
                    eprintln!("building kubelabd (static, release)...");
                    kubelabd::build_kubelabd(&repo).context("building kubelabd")?
                }
            };
            let options = BuildOptions {
                cache_dir: args.cache.unwrap_or_else(default_cache_dir),
                deb_dir: None,
                ..BuildOptions::for_repo(&repo, kubelabd)
            };
            let image = build(&options).context("building the guest image")?;
            crate::outln!("{}", image.dir.display());
            crate::outln!("{}", image.manifest.hash);
            eprintln!(
                "image {} ({:.2} s)",
                if image.cached {
                    "taken from the cache"
                } else {
                    "built"
                },
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ImageCommand::Lock(args) => {
            let repo = args.sources.repo();
            let options = BuildOptions::for_repo(&repo, PathBuf::new());
            let recipe = Recipe::load(&options.recipe)?;
            let lock = apt::resolve(&recipe).context("resolving the recipe with apt")?;
            lock.validate(&options.lock)?;
            let old = Lock::load(&options.lock).ok();
            std::fs::write(&options.lock, lock.to_text())
                .with_context(|| format!("writing {}", options.lock.display()))?;
            let changed = old.as_ref() != Some(&lock);
            eprintln!(
                "{} {} packages ({})",
                options.lock.display(),
                lock.packages.len(),
                if changed { "updated" } else { "unchanged" }
            );
            Ok(())
        }
    }
}
