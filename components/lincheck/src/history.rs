//! The recorded history: what each client asked, when, and what it was told.
//!
//! A runner (or a unit test) builds one [`Operation`] per request: the [`Input`] and the
//! invocation time before sending, then either the [`Output`] and the response time, or
//! [`Outcome::Indefinite`] when the client never learned whether a *write* took effect (timeout,
//! connection lost, leader changed). Failed *reads* have no effect and are simply not recorded.
//!
//! Times are nanoseconds since a common origin; only their order matters. An indefinite
//! operation has no response time: the checker treats it as still in flight forever, so it may
//! take effect at any point after its invocation, or never.

use std::fmt;

/// A key of the store, as text (the runner only writes printable keys).
pub type Key = String;
/// A value of the store, as text. The runner writes every value at most once, so a value names
/// the write that produced it.
pub type Value = String;

/// The relation a [`Compare`] checks, as in etcd's `Compare.CompareResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CmpOp {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`: the stored field is greater than the operand.
    Greater,
    /// `<`: the stored field is less than the operand.
    Less,
}

/// What a [`Compare`] looks at, with its operand.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CompareTarget {
    /// The key's value (fails when the key is absent, as etcd does).
    Value(Value),
    /// The key's version (0 when absent).
    Version(i64),
    /// The key's `mod_revision` (0 when absent).
    ModRevision(i64),
    /// The key's `create_revision` (0 when absent).
    CreateRevision(i64),
}

/// One guard of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Compare {
    /// The key compared.
    pub key: Key,
    /// The field and operand.
    pub target: CompareTarget,
    /// The relation.
    pub op: CmpOp,
}

/// One request inside a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TxnOp {
    /// Put `value` at `key`.
    Put {
        /// The key written.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// Read `key`.
    Get {
        /// The key read.
        key: Key,
    },
    /// Delete `key`.
    Delete {
        /// The key deleted.
        key: Key,
    },
}

impl TxnOp {
    /// The key this request touches.
    pub fn key(&self) -> &Key {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Get { key } | TxnOp::Delete { key } => key,
        }
    }
}

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Input {
    /// A single-key put.
    Put {
        /// The key written.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// A linearizable single-key read.
    Get {
        /// The key read.
        key: Key,
    },
    /// A single-key delete.
    Delete {
        /// The key deleted.
        key: Key,
    },
    /// A transaction: if every compare holds, `success` runs, else `failure`.
    Txn {
        /// The guards.
        compares: Vec<Compare>,
        /// Requests run when every guard holds.
        success: Vec<TxnOp>,
        /// Requests run otherwise.
        failure: Vec<TxnOp>,
    },
}

impl Input {
    /// Every key the request may touch; the checker partitions the history by these.
    pub fn keys(&self) -> Vec<&Key> {
        match self {
            Input::Put { key, .. } | Input::Get { key } | Input::Delete { key } => vec![key],
            Input::Txn {
                compares,
                success,
                failure,
            } => {
                let mut keys: Vec<&Key> = compares
                    .iter()
                    .map(|c| &c.key)
                    .chain(success.iter().chain(failure).map(TxnOp::key))
                    .collect();
                keys.sort();
                keys.dedup();
                keys
            }
        }
    }
}

/// A key-value pair as a read returned it (etcd `mvccpb.KeyValue` without the key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyValue {
    /// The value.
    pub value: Value,
    /// Number of writes since the key was (re)created; 1 after the first put.
    pub version: i64,
    /// Revision of the last write to the key.
    pub mod_revision: i64,
    /// Revision of the put that (re)created the key.
    pub create_revision: i64,
}

/// The result of one request inside a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TxnOpOutput {
    /// A put completed.
    Put,
    /// A read returned this (or nothing).
    Get(Option<KeyValue>),
    /// A delete removed this many keys.
    Delete(i64),
}

/// What a client was told.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// The put was committed at `revision`.
    Put {
        /// The store revision of the put (its `mod_revision`).
        revision: i64,
    },
    /// The read returned `kv` at store revision `revision`.
    Get {
        /// The key's state, or `None` when absent.
        kv: Option<KeyValue>,
        /// The store revision the read saw.
        revision: i64,
    },
    /// The delete removed `deleted` keys; the store was at `revision` afterwards.
    Delete {
        /// Keys removed (0 or 1 here).
        deleted: i64,
        /// The store revision after the delete.
        revision: i64,
    },
    /// The transaction ran the `succeeded` branch with these results.
    Txn {
        /// Whether every compare held.
        succeeded: bool,
        /// One result per request of the branch run.
        results: Vec<TxnOpOutput>,
        /// The store revision after the transaction (its writes' `mod_revision`).
        revision: i64,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// A definite answer.
    Ok(Output),
    /// The client does not know whether the write took effect.
    Indefinite,
    /// The client got no answer, but a watch stream showed the write take effect at
    /// `revision` (running the `succeeded` branch, for a transaction). See [`crate::patch`].
    Observed {
        /// The revision of the write's events.
        revision: i64,
        /// Which branch ran (always `true` for a put).
        succeeded: bool,
    },
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// Index in the history; stable, used in reports.
    pub id: usize,
    /// Which client issued it.
    pub client: usize,
    /// Invocation time (ns since the run's origin).
    pub call: u64,
    /// Response time, `None` for an indefinite outcome.
    pub ret: Option<u64>,
    /// The request.
    pub input: Input,
    /// The answer.
    pub outcome: Outcome,
}

/// A history under construction; hands out ids in order.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a completed operation with a definite answer.
    pub fn push_ok(&mut self, client: usize, call: u64, ret: u64, input: Input, output: Output) {
        let id = self.ops.len();
        self.ops.push(Operation {
            id,
            client,
            call,
            ret: Some(ret),
            input,
            outcome: Outcome::Ok(output),
        });
    }

    /// Records a write whose effect is unknown.
    pub fn push_indefinite(&mut self, client: usize, call: u64, input: Input) {
        let id = self.ops.len();
        self.ops.push(Operation {
            id,
            client,
            call,
            ret: None,
            input,
            outcome: Outcome::Indefinite,
        });
    }

    /// A history of operations whose ids are already assigned (kept as they are).
    pub fn from_ops(ops: Vec<Operation>) -> Self {
        History { ops }
    }

    /// Appends an operation recorded elsewhere, renumbering it.
    pub fn push(&mut self, mut op: Operation) {
        op.id = self.ops.len();
        self.ops.push(op);
    }

    /// The operations, in id order.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Equal => "==",
            CmpOp::NotEqual => "!=",
            CmpOp::Greater => ">",
            CmpOp::Less => "<",
        })
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            CompareTarget::Value(v) => write!(f, "value({}) {} {v:?}", self.key, self.op),
            CompareTarget::Version(n) => write!(f, "version({}) {} {n}", self.key, self.op),
            CompareTarget::ModRevision(n) => write!(f, "mod_rev({}) {} {n}", self.key, self.op),
            CompareTarget::CreateRevision(n) => {
                write!(f, "create_rev({}) {} {n}", self.key, self.op)
            }
        }
    }
}

impl fmt::Display for TxnOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnOp::Put { key, value } => write!(f, "put({key}, {value:?})"),
            TxnOp::Get { key } => write!(f, "get({key})"),
            TxnOp::Delete { key } => write!(f, "del({key})"),
        }
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Put { key, value } => write!(f, "put({key}, {value:?})"),
            Input::Get { key } => write!(f, "get({key})"),
            Input::Delete { key } => write!(f, "del({key})"),
            Input::Txn {
                compares,
                success,
                failure,
            } => write!(
                f,
                "txn(if {} then [{}] else [{}])",
                join(compares, " && "),
                join(success, ", "),
                join(failure, ", ")
            ),
        }
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (ver {}, mod {}, create {})",
            self.value, self.version, self.mod_revision, self.create_revision
        )
    }
}

impl fmt::Display for TxnOpOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnOpOutput::Put => f.write_str("ok"),
            TxnOpOutput::Get(None) => f.write_str("absent"),
            TxnOpOutput::Get(Some(kv)) => write!(f, "{kv}"),
            TxnOpOutput::Delete(n) => write!(f, "deleted {n}"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Indefinite => f.write_str("INDEFINITE (may or may not have taken effect)"),
            Outcome::Observed {
                revision,
                succeeded,
            } => write!(
                f,
                "no answer; watch saw it take effect @rev {revision}{}",
                if *succeeded { "" } else { " (else branch)" }
            ),
            Outcome::Ok(Output::Put { revision }) => write!(f, "ok @rev {revision}"),
            Outcome::Ok(Output::Get { kv: None, revision }) => write!(f, "absent @rev {revision}"),
            Outcome::Ok(Output::Get {
                kv: Some(kv),
                revision,
            }) => {
                write!(f, "{kv} @rev {revision}")
            }
            Outcome::Ok(Output::Delete { deleted, revision }) => {
                write!(f, "deleted {deleted} @rev {revision}")
            }
            Outcome::Ok(Output::Txn {
                succeeded,
                results,
                revision,
            }) => write!(
                f,
                "{} [{}] @rev {revision}",
                if *succeeded { "then" } else { "else" },
                join(results, ", ")
            ),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        match self.ret {
            Some(ret) => write!(
                f,
                "#{:<5} client {:<3} [{:>10.3} ms .. {:>10.3} ms] {} -> {}",
                self.id,
                self.client,
                ms(self.call),
                ms(ret),
                self.input,
                self.outcome
            ),
            None => write!(
                f,
                "#{:<5} client {:<3} [{:>10.3} ms .. never     ] {} -> {}",
                self.id,
                self.client,
                ms(self.call),
                self.input,
                self.outcome
            ),
        }
    }
}
