//! `kubelabd apiserver`: flags in kube-apiserver's names, then `kubelab_apiserver::run`.

use anyhow::Context as _;

/// Flags of `kubelabd apiserver` (named as kube-apiserver names them).
#[derive(clap::Args)]
pub struct Args {
    /// Store endpoints (etcd v3 API), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    etcd_servers: Vec<String>,
    /// Address to listen on (plain HTTP in this increment: keep it on loopback).
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port to listen on (0 picks a free one; see --kubeconfig-out for the result).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Range Service ClusterIPs are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: ipnetwork::Ipv4Network,
    /// Range Service NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: kubelab_apiserver::config::PortRange,
    /// Write an admin kubeconfig for this server here once it listens.
    #[arg(long)]
    kubeconfig_out: Option<std::path::PathBuf>,
}

/// Runs the API server until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = kubelab_apiserver::Config::new(args.etcd_servers);
    config.service_cluster_ip_range = args.service_cluster_ip_range;
    config.service_node_port_range = args.service_node_port_range;
    config.validate().context("invalid apiserver flags")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.bind_address, args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.bind_address, args.port))?;
        let addr = listener.local_addr()?;
        if let Some(path) = &args.kubeconfig_out {
            kubelab_apiserver::kubeconfig::write(path, &format!("http://{addr}"))
                .with_context(|| format!("cannot write kubeconfig {}", path.display()))?;
        }
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler cannot fail on Linux");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        kubelab_apiserver::run(config, listener, shutdown)
            .await
            .context("apiserver failed")
    })
}
