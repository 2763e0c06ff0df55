//! Running a piece of code inside a network namespace, on a thread of its own.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Runs `f` on a new thread whose network namespace is `ns`, and returns its result.
pub fn run_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let path = PathBuf::from(NETNS_DIR).join(ns);
    std::thread::spawn(move || {
        let fd = File::open(&path)?;
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(LinkNameSpaceType::Network),
        )?;
        f()
    })
    .join()
    .map_err(|_| std::io::Error::other("namespace thread panicked"))?
}

/// Opens a TCP connection to `addr` from inside namespace `ns`.
pub fn connect_tcp(ns: &str, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    run_in(ns, move || TcpStream::connect_timeout(&addr, timeout))
}
