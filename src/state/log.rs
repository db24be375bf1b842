//! The command log on one node: commands are queued, applied in arrival order in batches, and
//! each batch is written to storage atomically with a single fsync (group commit), so that one
//! disk flush serves many cameras. A command's caller hears back only after its batch is durable.
//! This is the seam where the cluster replaces local commit with a Raft quorum commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::command::{Command, Outcome};
use super::machine::{self, ApplyError, WriteSet};
use crate::metrics::Metrics;
use crate::storage::Storage;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The command broke a rule of the state; nothing was written.
    #[error("{0}")]
    Rejected(String),
    /// The batch could not be made durable; nothing of it is acknowledged.
    #[error("could not commit to storage: {0}")]
    Storage(String),
    #[error("the command log has stopped")]
    Stopped,
}

struct Pending {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, CommitError>>,
}

/// A handle to propose commands. Cheap to clone.
#[derive(Clone)]
pub struct CommandLog {
    queue: mpsc::Sender<Pending>,
}

/// Most commands applied in one batch (one fsync).
const MAX_BATCH: usize = 512;

impl CommandLog {
    /// Starts the commit thread over `storage`.
    pub fn start(storage: Arc<dyn Storage>, metrics: Metrics) -> Self {
        let (queue, inbox) = mpsc::channel::<Pending>(4096);
        std::thread::Builder::new()
            .name("command-log".into())
            .spawn(move || commit_loop(storage, inbox, metrics))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the command-log thread: {e}"));
        Self { queue }
    }

    /// Proposes a command and waits until it is durably applied (or rejected).
    pub async fn propose(&self, command: Command) -> Result<Outcome, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { command, reply })
            .await
            .map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }
}

fn commit_loop(storage: Arc<dyn Storage>, mut inbox: mpsc::Receiver<Pending>, metrics: Metrics) {
    while let Some(first) = inbox.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut ws = WriteSet::new(storage.as_ref());
        let mut results = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for Pending { command, reply } in batch {
            let kind = command.kind();
            let checkpoint = ws.checkpoint();
            let result = match machine::apply(&mut ws, command) {
                Ok(outcome) => Ok(outcome),
                Err(ApplyError::Rejected(reason)) => {
                    ws.rollback(checkpoint);
                    Err(CommitError::Rejected(reason))
                }
                Err(ApplyError::Storage(e)) => {
                    ws.rollback(checkpoint);
                    Err(CommitError::Storage(e.to_string()))
                }
            };
            metrics.commands_applied.with_label_values(&[kind]).inc();
            results.push(result);
            replies.push(reply);
        }
        let ops = ws.into_ops();
        let written = if ops.is_empty() {
            Ok(())
        } else {
            storage.write(ops, true)
        };
        metrics.commit_batch_size.observe(replies.len() as f64);
        match written {
            Ok(()) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch commit failed; no command in it is acknowledged");
                for reply in replies {
                    let _ = reply.send(Err(CommitError::Storage(e.to_string())));
                }
            }
        }
    }
}
