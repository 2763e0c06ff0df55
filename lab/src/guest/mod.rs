//! Reaching guests: SSH over the management network from inside the lab namespace.
//!
//! - [`netns::connect_tcp`] opens the TCP connection on a thread that has `setns`'d into the
//!   lab namespace (a socket stays in the namespace it was created in, so the rest of the
//!   process never changes namespace);
//! - [`Guest`] wraps an authenticated `ssh2` session on it, after checking the guest's host
//!   key against the one made for the node ([`Credentials`]): [`Guest::exec`] (exit code and
//!   output), [`Guest::write_file`], and [`Guest::wait_ready`] which polls with a deadline;
//! - [`keys`] makes the lab's key pair and each node's host key.

pub mod keys;
pub mod netns;
mod ssh;

pub use ssh::{Credentials, ExecOutput, Guest, GuestError, shell_quote};
