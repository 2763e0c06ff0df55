//! `kubelabd apiserver`: flags in kube-apiserver's names, then `kubelab_apiserver::run`;
//! and `kubelabd kubeconfig`: a kubeconfig for any user, signed by a cert dir's CA.

use std::path::PathBuf;

use anyhow::Context as _;

/// Flags of `kubelabd apiserver` (named as kube-apiserver names them).
#[derive(clap::Args)]
pub struct Args {
    /// External store endpoints (etcd v3 API: real etcd or `kubelabd store` members),
    /// comma-separated. Without it the server embeds a single-member kubelab store.
    #[arg(long, value_delimiter = ',', conflicts_with = "store_data_dir")]
    etcd_servers: Vec<String>,
    /// Data dir of the embedded store (used when --etcd-servers is not given).
    #[arg(long)]
    store_data_dir: Option<PathBuf>,
    /// Address to listen on (0.0.0.0 for every address).
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port to listen on, HTTPS (0 picks a free one; see --kubeconfig-out for the result).
    #[arg(long = "secure-port", alias = "port", default_value_t = 6443)]
    port: u16,
    /// Range Service ClusterIPs are allocated from (its first address is a serving SAN).
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: ipnetwork::Ipv4Network,
    /// Range Service NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: kubelab_apiserver::config::PortRange,
    /// Directory of the cluster CA, serving certificate and ServiceAccount key; created at
    /// first start, reused afterwards.
    #[arg(long, default_value = "/var/run/kubernetes")]
    cert_dir: PathBuf,
    /// Extra subject alternative names (IPs or DNS names) for the serving certificate.
    #[arg(long, value_delimiter = ',')]
    tls_sans: Vec<String>,
    /// The address clients are told to use (serving SAN, discovery, kubeconfig).
    #[arg(long)]
    advertise_address: Option<std::net::IpAddr>,
    /// CA bundle (PEM) that client certificates are verified against instead of the cluster CA.
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// ECDSA P-256 PKCS#8 PEM key that signs and verifies ServiceAccount tokens
    /// (default: <cert-dir>/sa.key, created at first start).
    #[arg(long)]
    service_account_key_file: Option<PathBuf>,
    /// Issuer (`iss`) of ServiceAccount tokens, also the API audience.
    #[arg(long, default_value = kubelab_apiserver::authn::serviceaccount::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// Serve plain HTTP instead of HTTPS (no client certificates; tokens still work).
    /// Refused unless --bind-address is a loopback address. For tests and benchmarks.
    #[arg(long)]
    insecure_plain_http_loopback: bool,
    /// Write an admin kubeconfig (user kubernetes-admin in system:masters) here once the
    /// server is ready.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// How often the store is compacted to the revision seen at the previous tick
    /// (Go-style duration: 5m, 90s, 1h30m); 0 disables. As kube-apiserver's flag.
    #[arg(long, default_value = "5m", value_parser = kubelab_apiserver::compactor::parse_duration)]
    etcd_compaction_interval: std::time::Duration,
    /// Page Table lists (`kubectl get`'s) by their `limit`, as kube-apiserver does. By default
    /// a Table list is returned whole, which spares kubectl its client-side rate limiter
    /// (QPS 5, burst 10) on every page beyond the tenth.
    #[arg(long)]
    honor_table_limit: bool,
}

/// Where the embedded store keeps its data unless --store-data-dir says otherwise.
const DEFAULT_STORE_DATA_DIR: &str = "/var/lib/kubelab/apiserver-store";

/// Runs the API server until SIGINT or SIGTERM (then stops the embedded store, if any).
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = if args.etcd_servers.is_empty() {
        let dir = args
            .store_data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_DATA_DIR));
        kubelab_apiserver::Config::embedded(dir, args.cert_dir)
    } else {
        kubelab_apiserver::Config::new(args.etcd_servers, args.cert_dir)
    };
    config.service_cluster_ip_range = args.service_cluster_ip_range;
    config.service_node_port_range = args.service_node_port_range;
    config.etcd_compaction_interval = args.etcd_compaction_interval;
    config.honor_table_limit = args.honor_table_limit;
    let s = &mut config.security;
    s.tls_sans = args.tls_sans;
    s.advertise_address = args.advertise_address;
    s.client_ca_file = args.client_ca_file;
    s.token_auth_file = args.token_auth_file;
    s.service_account_key_file = args.service_account_key_file;
    s.service_account_issuer = args.service_account_issuer;
    s.plain_http = args.insecure_plain_http_loopback;
    s.admin_kubeconfig = args.kubeconfig_out;
    config.validate().context("invalid apiserver flags")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.bind_address, args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.bind_address, args.port))?;
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

/// Flags of `kubelabd kubeconfig`.
#[derive(clap::Args)]
pub struct KubeconfigArgs {
    /// The API server's cert dir (its ca.crt and ca.key sign the client certificate).
    #[arg(long, default_value = "/var/run/kubernetes")]
    cert_dir: PathBuf,
    /// User name (the certificate's CN).
    #[arg(long)]
    user: String,
    /// Groups (the certificate's O), repeatable or comma-separated.
    #[arg(long = "group", value_delimiter = ',')]
    groups: Vec<String>,
    /// The API server URL.
    #[arg(long, default_value = "https://127.0.0.1:6443")]
    server: String,
    /// How long the client certificate is valid, in hours.
    #[arg(long, default_value_t = 24 * 365)]
    valid_hours: u64,
    /// Where to write the kubeconfig (mode 0600); `-` prints it.
    #[arg(long)]
    out: PathBuf,
}

/// Mints a kubeconfig for a user from a cert dir.
pub fn kubeconfig(args: KubeconfigArgs) -> anyhow::Result<()> {
    use kubelab_apiserver::{kubeconfig, pki};
    anyhow::ensure!(!args.user.is_empty(), "--user must not be empty");
    anyhow::ensure!(
        args.valid_hours > 0,
        "--valid-hours must be greater than zero"
    );
    anyhow::ensure!(
        args.server.starts_with("https://") || args.server.starts_with("http://"),
        "--server {:?} must be an https:// URL",
        args.server
    );
    let ca = pki::load_ca(&pki::CertDir::new(&args.cert_dir))
        .with_context(|| format!("cannot use the CA of {}", args.cert_dir.display()))?;
    let validity = pki::Validity::from_now(std::time::Duration::from_secs(args.valid_hours * 3600));
    let text = kubeconfig::for_user(&ca, &args.server, &args.user, &args.groups, validity)
        .context("cannot issue the client certificate")?;
    if args.out.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    kubeconfig::write(&args.out, &text)
        .with_context(|| format!("cannot write {}", args.out.display()))
}
