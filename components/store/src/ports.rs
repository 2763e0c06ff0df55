//! Loopback ports for members that must be named before they are bound (a cluster's
//! `--initial-cluster` lists every peer URL before any member starts) — used by tests and by
//! tools that start local clusters.
//!
//! "Bind port 0, read it, release it" hands out a port from the kernel's ephemeral range, which
//! every outgoing loopback connection draws from too: between the release and the member's own
//! bind, a client socket of a parallel test can take it ("Address already in use", seen in
//! CI). So ports are picked below the ephemeral range (`ip_local_port_range`), which the kernel
//! never hands out by itself, at a random offset, checked free by binding, and never handed out
//! twice by one process.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Mutex;

/// Lowest port picked.
const LOW: u16 = 10_000;

/// Ports this process handed out.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port below the ephemeral range that was free when checked and that this
/// process has not handed out before.
pub fn unused_loopback_port() -> std::io::Result<u16> {
    let high = ephemeral_low().max(LOW + 1000);
    let span = u64::from(high - LOW);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let start = h.finish() % span;
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for i in 0..span {
        let port = LOW + ((start + i * 7919) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free loopback port in {LOW}..{high}"),
    ))
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_bindable_and_distinct() {
        let ports: Vec<u16> = (0..50).map(|_| unused_loopback_port().unwrap()).collect();
        let distinct: HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in &ports {
            assert!((LOW..ephemeral_low().max(LOW + 1000)).contains(p), "{p}");
        }
        let _l = TcpListener::bind(("127.0.0.1", ports[0])).expect("still free");
    }
}
