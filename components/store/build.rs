//! Generates the tonic client and server for the store's own peer service (`proto/peer.proto`).
//! The etcd v3 API's server traits come from the `etcd-client` crate (`build-server` feature).

fn main() {
    println!("cargo:rerun-if-changed=proto/peer.proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/peer.proto"], &["proto"])
        .expect("compile proto/peer.proto (needs protoc: scripts/setup-host installs it)");
}
