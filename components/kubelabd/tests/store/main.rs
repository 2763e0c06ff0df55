//! `kubelabd store` as separate processes on loopback, driven with the etcd v3 API and with
//! the real `etcdctl` 3.4. The binary under test is the one cargo built for this package.

mod etcdctl;
mod processes;
mod util;
