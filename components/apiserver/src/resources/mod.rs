//! The served resources, one file each (RBAC's four kinds share `rbac.rs`; the computed
//! access/identity reviews share `reviews.rs`), and
//! [`registry`], which lists them in discovery order. `podspec` holds the pod template rules
//! every workload shares.

pub mod configmaps;
pub mod cron;
pub mod cronjobs;
pub mod daemonsets;
pub mod deployments;
pub mod endpoints;
pub mod endpointslices;
pub mod events;
pub mod jobs;
pub mod leases;
pub mod namespaces;
pub mod nodes;
pub mod pods;
pub mod podspec;
pub mod quantity;
pub mod rbac;
pub mod replicasets;
pub mod reviews;
pub mod secrets;
pub mod serviceaccounts;
pub mod services;
pub mod statefulsets;

use crate::registry::Registry;

/// Every resource this server serves.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.add::<namespaces::Namespaces>();
    r.add::<nodes::Nodes>();
    r.add::<pods::Pods>();
    r.add::<services::Services>();
    r.add::<endpoints::Endpoints>();
    r.add::<configmaps::ConfigMaps>();
    r.add::<secrets::Secrets>();
    r.add::<serviceaccounts::ServiceAccounts>();
    r.add::<events::Events>();
    r.add::<deployments::Deployments>();
    r.add::<replicasets::ReplicaSets>();
    r.add::<daemonsets::DaemonSets>();
    r.add::<statefulsets::StatefulSets>();
    r.add::<jobs::Jobs>();
    r.add::<cronjobs::CronJobs>();
    r.add::<leases::Leases>();
    r.add::<endpointslices::EndpointSlices>();
    r.add::<rbac::Roles>();
    r.add::<rbac::ClusterRoles>();
    r.add::<rbac::RoleBindings>();
    r.add::<rbac::ClusterRoleBindings>();
    reviews::register(&mut r);
    r
}
