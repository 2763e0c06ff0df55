//! The watch-fed cache of what the security stages read on every request: the RBAC objects
//! (as a [`Policy`] snapshot) and the ServiceAccounts' uids (for token authentication).
//! No request ever reads the store for authentication or authorization.
//!
//! Data flow: one reflector task per resource (roles, clusterroles, rolebindings,
//! clusterrolebindings, serviceaccounts) lists the resource at one store revision, replaces
//! its map, then watches from that revision and applies each event. After a change to an
//! RBAC map a new [`Policy`] is built and swapped in (readers hold an `Arc` to a complete
//! snapshot, never a half-updated one). A broken or compacted watch is followed by a fresh
//! list. The reflectors hold only a weak reference to the cache and are aborted when it
//! is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::Value;
use tokio::sync::watch;

use super::Policy;
use crate::storage::watch::StoreEvent;
use crate::storage::{Store, keys, list::ListOptions};

/// The cached resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cached {
    Roles,
    ClusterRoles,
    RoleBindings,
    ClusterRoleBindings,
    ServiceAccounts,
}

const ALL: [Cached; 5] = [
    Cached::Roles,
    Cached::ClusterRoles,
    Cached::RoleBindings,
    Cached::ClusterRoleBindings,
    Cached::ServiceAccounts,
];

impl Cached {
    fn plural(self) -> &'static str {
        match self {
            Cached::Roles => "roles",
            Cached::ClusterRoles => "clusterroles",
            Cached::RoleBindings => "rolebindings",
            Cached::ClusterRoleBindings => "clusterrolebindings",
            Cached::ServiceAccounts => "serviceaccounts",
        }
    }
}

/// The RBAC objects by store key.
#[derive(Default)]
struct Objects {
    roles: HashMap<String, Role>,
    cluster_roles: HashMap<String, ClusterRole>,
    bindings: HashMap<String, RoleBinding>,
    cluster_bindings: HashMap<String, ClusterRoleBinding>,
}

/// A cache change.
enum Change {
    /// Everything, from a list.
    Replace(Vec<Value>),
    /// One object written.
    Put(Value),
    /// One object deleted.
    Delete(Value),
}

/// The cache; see the module doc.
pub struct PolicyCache {
    objects: Mutex<Objects>,
    policy: RwLock<Arc<Policy>>,
    /// (namespace, name) → uid.
    accounts: RwLock<HashMap<(String, String), String>>,
    /// How many resources have completed their first list.
    synced: watch::Sender<usize>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// The cache did not fill in time.
#[derive(Debug, thiserror::Error)]
#[error("the RBAC cache did not complete its first list of the store within {0:?}")]
pub struct NotSynced(pub Duration);

fn key_of(v: &Value) -> String {
    let m = &v["metadata"];
    format!(
        "{}/{}",
        m["namespace"].as_str().unwrap_or_default(),
        m["name"].as_str().unwrap_or_default()
    )
}

fn apply_map<T: serde::de::DeserializeOwned>(map: &mut HashMap<String, T>, change: Change) {
    let decode = |v: &Value| match T::deserialize(v) {
        Ok(t) => Some(t),
        Err(e) => {
            // Objects are validated on write; this means another writer bypassed the API.
            tracing::warn!(key = %key_of(v), error = %e, "ignoring an undecodable RBAC object");
            None
        }
    };
    match change {
        Change::Replace(items) => {
            map.clear();
            for v in items {
                if let Some(t) = decode(&v) {
                    map.insert(key_of(&v), t);
                }
            }
        }
        Change::Put(v) => match decode(&v) {
            Some(t) => {
                map.insert(key_of(&v), t);
            }
            None => {
                map.remove(&key_of(&v));
            }
        },
        Change::Delete(v) => {
            map.remove(&key_of(&v));
        }
    }
}

impl PolicyCache {
    /// An empty cache; [`PolicyCache::start`] feeds it.
    pub fn new() -> Arc<PolicyCache> {
        Arc::new(PolicyCache {
            objects: Mutex::new(Objects::default()),
            policy: RwLock::new(Arc::new(Policy::default())),
            accounts: RwLock::new(HashMap::new()),
            synced: watch::channel(0).0,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts feeding the cache from `store`; [`PolicyCache::wait_synced`] tells when it
    /// holds the store's content.
    pub fn start(self: &Arc<Self>, store: &Store) {
        let mut tasks = self.tasks.lock().expect("cache task list");
        for what in ALL {
            let task = tokio::spawn(reflect(store.clone(), what, Arc::downgrade(self)));
            tasks.push(task.abort_handle());
        }
    }

    /// Waits until every resource has been listed once.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), NotSynced> {
        let mut rx = self.synced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= ALL.len()))
            .await
            .map_err(|_| NotSynced(timeout))?
            .map(|_| ())
            .map_err(|_| NotSynced(timeout))
    }

    /// The current policy snapshot.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// The uid of a ServiceAccount, if it exists.
    pub fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.accounts
            .read()
            .expect("accounts lock")
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn apply(&self, what: Cached, change: Change) {
        if what == Cached::ServiceAccounts {
            let mut accounts = self.accounts.write().expect("accounts lock");
            let entry = |v: &Value| {
                let m = &v["metadata"];
                (
                    (
                        m["namespace"].as_str().unwrap_or_default().to_string(),
                        m["name"].as_str().unwrap_or_default().to_string(),
                    ),
                    m["uid"].as_str().unwrap_or_default().to_string(),
                )
            };
            match change {
                Change::Replace(items) => {
                    *accounts = items.iter().map(entry).collect();
                }
                Change::Put(v) => {
                    let (k, uid) = entry(&v);
                    accounts.insert(k, uid);
                }
                Change::Delete(v) => {
                    accounts.remove(&entry(&v).0);
                }
            }
            return;
        }
        let mut objects = self.objects.lock().expect("objects lock");
        match what {
            Cached::Roles => apply_map(&mut objects.roles, change),
            Cached::ClusterRoles => apply_map(&mut objects.cluster_roles, change),
            Cached::RoleBindings => apply_map(&mut objects.bindings, change),
            Cached::ClusterRoleBindings => apply_map(&mut objects.cluster_bindings, change),
            Cached::ServiceAccounts => unreachable!("handled above"),
        }
        let policy = Policy::build(
            objects.roles.values(),
            objects.cluster_roles.values(),
            objects.bindings.values(),
            objects.cluster_bindings.values(),
        );
        *self.policy.write().expect("policy lock") = Arc::new(policy);
    }
}

impl Drop for PolicyCache {
    fn drop(&mut self) {
        for t in self.tasks.lock().map(|t| t.clone()).unwrap_or_default() {
            t.abort();
        }
    }
}

/// Wait between attempts after a store failure, doubling up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// List, then watch, forever (see the module doc).
async fn reflect(store: Store, what: Cached, cache: Weak<PolicyCache>) {
    let prefix = keys::collection(what.plural(), None);
    let mut backoff = MIN_BACKOFF;
    let mut first = true;
    loop {
        let page = match store
            .list(&prefix, &ListOptions::default(), false, |_| true)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(resource = what.plural(), error = %e, "RBAC cache: list failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let Some(c) = cache.upgrade() else { return };
        c.apply(
            what,
            Change::Replace(page.items.into_iter().map(|s| s.object).collect()),
        );
        if first {
            first = false;
            c.synced.send_modify(|n| *n += 1);
        }
        drop(c);
        let mut watcher = match store.watch(&prefix, page.revision).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(resource = what.plural(), error = %e, "RBAC cache: watch failed; relisting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        loop {
            match watcher.next().await {
                Ok(Some(events)) => {
                    let Some(c) = cache.upgrade() else { return };
                    for e in events {
                        match e {
                            StoreEvent::Put { object, .. } => c.apply(what, Change::Put(object)),
                            StoreEvent::Delete { object } => c.apply(what, Change::Delete(object)),
                            StoreEvent::Progress { .. } => {}
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(resource = what.plural(), error = %e, "RBAC cache: watch ended; relisting");
                    break;
                }
            }
        }
    }
}
