//! The recognition worker pool: one ractor actor per worker, each owning its own recognizer
//! (ONNX sessions are not shared). A frame goes to the worker with the fewest frames queued;
//! the model runs on a blocking thread so the async runtime keeps serving connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, rpc::CallResult};

use super::pipeline::{RecognitionError, RecognizedPlate, Recognizer};
use crate::config::RecognitionSection;

pub enum WorkerMsg {
    Recognize {
        image: Vec<u8>,
        max_pixels: u64,
        reply: RpcReplyPort<Result<Vec<RecognizedPlate>, RecognitionError>>,
    },
}

struct RecognitionWorker;

impl Actor for RecognitionWorker {
    type Msg = WorkerMsg;
    type State = Option<Recognizer>;
    type Arguments = Recognizer;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        recognizer: Recognizer,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Some(recognizer))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerMsg::Recognize {
            image,
            max_pixels,
            reply,
        } = message;
        let Some(mut recognizer) = state.take() else {
            let _ = reply.send(Err(RecognitionError::Model(
                "recognizer unavailable".into(),
            )));
            return Ok(());
        };
        let (recognizer, result) = tokio::task::spawn_blocking(move || {
            let result = recognizer.recognize_bytes(&image, max_pixels);
            (recognizer, result)
        })
        .await
        .map_err(|e| format!("recognition thread failed: {e}"))?;
        *state = Some(recognizer);
        let _ = reply.send(result);
        Ok(())
    }
}

pub struct RecognitionPool {
    workers: Vec<(ActorRef<WorkerMsg>, Arc<AtomicUsize>)>,
}

impl RecognitionPool {
    /// Loads `config.workers` recognizers and starts one actor for each.
    pub async fn start(config: &RecognitionSection) -> Result<Self> {
        let mut workers = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            let recognizer = Recognizer::load(config)?;
            let (actor, _handle) = Actor::spawn(None, RecognitionWorker, recognizer)
                .await
                .context("starting a recognition worker")?;
            workers.push((actor, Arc::new(AtomicUsize::new(0))));
        }
        Ok(Self { workers })
    }

    pub fn size(&self) -> usize {
        self.workers.len()
    }

    /// Recognizes the plates in an encoded image.
    pub async fn recognize(
        &self,
        image: Vec<u8>,
        max_pixels: u64,
    ) -> Result<Vec<RecognizedPlate>, RecognitionError> {
        let (actor, queued) = self
            .workers
            .iter()
            .min_by_key(|(_, queued)| queued.load(Ordering::Relaxed))
            .ok_or_else(|| RecognitionError::Model("the recognition pool has no workers".into()))?;
        queued.fetch_add(1, Ordering::Relaxed);
        let answer = actor
            .call(
                |reply| WorkerMsg::Recognize {
                    image,
                    max_pixels,
                    reply,
                },
                None,
            )
            .await;
        queued.fetch_sub(1, Ordering::Relaxed);
        match answer {
            Ok(CallResult::Success(result)) => result,
            Ok(_) => Err(RecognitionError::Model(
                "the recognition worker did not answer".into(),
            )),
            Err(e) => Err(RecognitionError::Model(
                anyhow!("recognition worker unreachable: {e}").to_string(),
            )),
        }
    }

    /// Stops every worker.
    pub fn stop(&self) {
        for (actor, _) in &self.workers {
            actor.stop(None);
        }
    }
}
