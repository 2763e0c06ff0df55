//! One workload client: a loop of put/get/txn/delete on a small key set, each recorded.
//!
//! The client talks to one member at a time and moves to the next after any error (the member
//! may be dead or frozen). Every value it writes is unique (`c<client>-<n>`), so a value read
//! back names its write. It remembers the last state it saw of each key to build
//! compare-and-set transactions that sometimes succeed and sometimes fail. A failed read is
//! dropped (it had no effect); a failed or timed-out write is recorded as indefinite.

use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare as ECompare, CompareOp, ConnectOptions, Txn, TxnOp as ETxnOp, TxnOpResponse,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::history::{
    CmpOp, Compare, CompareTarget, Input, KeyValue, Operation, Outcome, Output, TxnOp, TxnOpOutput,
};

/// What one client needs to run.
pub(crate) struct ClientSpec {
    pub id: usize,
    pub seed: u64,
    pub endpoints: Vec<String>,
    pub keys: Vec<String>,
    pub origin: Instant,
    pub until: Instant,
    pub op_timeout: Duration,
}

/// The runner's options for any etcd client it opens.
pub(crate) fn connect_options(timeout: Duration) -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(timeout)
        .with_require_leader(true)
}

fn ns(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        value: String::from_utf8_lossy(kv.value()).into_owned(),
        version: kv.version(),
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
    }
}

/// Runs the client until `spec.until`; returns its operations (ids assigned later).
pub(crate) async fn run_client(spec: ClientSpec) -> Vec<Operation> {
    let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_add(spec.id as u64 * 0x9e37_79b9));
    let mut ops = Vec::new();
    let mut seen: Vec<Option<KeyValue>> = vec![None; spec.keys.len()];
    let mut endpoint = spec.id % spec.endpoints.len();
    let mut client: Option<Client> = None;
    let mut seq = 0u64;
    // Consecutive failures: a real client backs off instead of hammering an electing cluster.
    let mut failures = 0u32;
    while Instant::now() < spec.until {
        if failures > 0 {
            tokio::time::sleep(Duration::from_millis(20) * failures.min(10)).await;
        }
        if client.is_none() {
            let opts = connect_options(spec.op_timeout);
            let ep = [spec.endpoints[endpoint].as_str()];
            match tokio::time::timeout(spec.op_timeout, Client::connect(ep, Some(opts))).await {
                Ok(Ok(c)) => client = Some(c),
                _ => {
                    endpoint = (endpoint + 1) % spec.endpoints.len();
                    failures += 1;
                    continue;
                }
            }
        }
        let c = client.as_mut().expect("connected above");
        let k = rng.random_range(0..spec.keys.len());
        let input = choose(&mut rng, &spec, k, &seen, &mut seq);
        let call = ns(spec.origin);
        let result = tokio::time::timeout(spec.op_timeout, execute(c, &input)).await;
        let ret = ns(spec.origin);
        match result {
            Ok(Ok(output)) => {
                failures = 0;
                learn(&mut seen, &spec.keys, &input, &output);
                ops.push(Operation {
                    id: 0,
                    client: spec.id,
                    call,
                    ret: Some(ret),
                    input,
                    outcome: Outcome::Ok(output),
                });
            }
            failed => {
                if let Ok(Err(e)) = &failed {
                    tracing::debug!(client = spec.id, error = %e, op = %input, "request failed");
                }
                if !matches!(input, Input::Get { .. }) {
                    ops.push(Operation {
                        id: 0,
                        client: spec.id,
                        call,
                        ret: None,
                        input,
                        outcome: Outcome::Indefinite,
                    });
                }
                client = None;
                endpoint = (endpoint + 1) % spec.endpoints.len();
                failures += 1;
            }
        }
    }
    ops
}

/// The key paired with key `k` in two-key transactions (keys are grouped two by two, so the
/// history splits into independent partitions of two keys).
fn pair(k: usize, n: usize) -> usize {
    if (k ^ 1) < n { k ^ 1 } else { k }
}

fn choose(
    rng: &mut StdRng,
    spec: &ClientSpec,
    k: usize,
    seen: &[Option<KeyValue>],
    seq: &mut u64,
) -> Input {
    let key = spec.keys[k].clone();
    let mut value = || {
        *seq += 1;
        format!("c{}-{}", spec.id, seq)
    };
    let guard = |k: usize| -> Compare {
        let key = spec.keys[k].clone();
        match &seen[k] {
            Some(kv) => Compare {
                key,
                target: CompareTarget::ModRevision(kv.mod_revision),
                op: CmpOp::Equal,
            },
            None => Compare {
                key,
                target: CompareTarget::Version(0),
                op: CmpOp::Equal,
            },
        }
    };
    match rng.random_range(0..100) {
        0..35 => Input::Get { key },
        35..60 => Input::Put {
            key,
            value: value(),
        },
        60..75 => Input::Txn {
            compares: vec![guard(k)],
            success: vec![TxnOp::Put {
                key: key.clone(),
                value: value(),
            }],
            failure: vec![TxnOp::Get { key }],
        },
        75..85 => {
            let expect = seen[k]
                .as_ref()
                .map_or_else(String::new, |kv| kv.value.clone());
            Input::Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::Value(expect),
                    op: CmpOp::Equal,
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value: value(),
                }],
                failure: vec![TxnOp::Get { key }],
            }
        }
        85..95 => {
            let k2 = pair(k, spec.keys.len());
            let key2 = spec.keys[k2].clone();
            Input::Txn {
                compares: vec![guard(k)],
                success: vec![
                    TxnOp::Put {
                        key: key.clone(),
                        value: value(),
                    },
                    TxnOp::Put {
                        key: key2.clone(),
                        value: value(),
                    },
                ],
                failure: vec![TxnOp::Get { key }, TxnOp::Get { key: key2 }],
            }
        }
        _ => Input::Delete { key },
    }
}

/// Remembers what a successful answer showed about each key, for later guards.
fn learn(seen: &mut [Option<KeyValue>], keys: &[String], input: &Input, output: &Output) {
    let idx = |key: &String| keys.iter().position(|k| k == key);
    match (input, output) {
        (Input::Get { key }, Output::Get { kv, .. }) => {
            if let Some(i) = idx(key) {
                seen[i] = kv.clone();
            }
        }
        (
            Input::Txn { failure, .. },
            Output::Txn {
                succeeded: false,
                results,
                ..
            },
        ) => {
            for (op, r) in failure.iter().zip(results) {
                if let (TxnOp::Get { key }, TxnOpOutput::Get(kv)) = (op, r)
                    && let Some(i) = idx(key)
                {
                    seen[i] = kv.clone();
                }
            }
        }
        _ => {}
    }
}

fn cmp_op(op: CmpOp) -> CompareOp {
    match op {
        CmpOp::Equal => CompareOp::Equal,
        CmpOp::NotEqual => CompareOp::NotEqual,
        CmpOp::Greater => CompareOp::Greater,
        CmpOp::Less => CompareOp::Less,
    }
}

fn to_etcd_op(op: &TxnOp) -> ETxnOp {
    match op {
        TxnOp::Put { key, value } => ETxnOp::put(key.as_str(), value.as_str(), None),
        TxnOp::Get { key } => ETxnOp::get(key.as_str(), None),
        TxnOp::Delete { key } => ETxnOp::delete(key.as_str(), None),
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> i64 {
    h.map_or(0, |h| h.revision())
}

/// Sends one request; maps the answer into the history's terms.
async fn execute(c: &mut Client, input: &Input) -> Result<Output, etcd_client::Error> {
    Ok(match input {
        Input::Put { key, value } => {
            let r = c.put(key.as_str(), value.as_str(), None).await?;
            Output::Put {
                revision: header_revision(r.header()),
            }
        }
        Input::Get { key } => {
            let r = c.get(key.as_str(), None).await?;
            Output::Get {
                kv: r.kvs().first().map(to_kv),
                revision: header_revision(r.header()),
            }
        }
        Input::Delete { key } => {
            let r = c.delete(key.as_str(), None).await?;
            Output::Delete {
                deleted: r.deleted(),
                revision: header_revision(r.header()),
            }
        }
        Input::Txn {
            compares,
            success,
            failure,
        } => {
            let when: Vec<ECompare> = compares
                .iter()
                .map(|c| {
                    let (k, op) = (c.key.as_str(), cmp_op(c.op));
                    match &c.target {
                        CompareTarget::Value(v) => ECompare::value(k, op, v.as_str()),
                        CompareTarget::Version(n) => ECompare::version(k, op, *n),
                        CompareTarget::ModRevision(n) => ECompare::mod_revision(k, op, *n),
                        CompareTarget::CreateRevision(n) => ECompare::create_revision(k, op, *n),
                    }
                })
                .collect();
            let txn = Txn::new()
                .when(when)
                .and_then(success.iter().map(to_etcd_op).collect::<Vec<_>>())
                .or_else(failure.iter().map(to_etcd_op).collect::<Vec<_>>());
            let r = c.txn(txn).await?;
            let results = r
                .op_responses()
                .into_iter()
                .map(|o| match o {
                    TxnOpResponse::Put(_) => TxnOpOutput::Put,
                    TxnOpResponse::Get(g) => TxnOpOutput::Get(g.kvs().first().map(to_kv)),
                    TxnOpResponse::Delete(d) => TxnOpOutput::Delete(d.deleted()),
                    // The runner never nests transactions; an unexpected shape fails the model.
                    TxnOpResponse::Txn(_) => TxnOpOutput::Delete(-1),
                })
                .collect();
            Output::Txn {
                succeeded: r.succeeded(),
                results,
                revision: header_revision(r.header()),
            }
        }
    })
}
