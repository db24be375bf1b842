//! The QUIC endpoint for cameras. Each accepted connection authenticates on its first stream,
//! then one `CameraConnection` actor owns the connection's send side and its frames in flight.
//! The reading side stops reading when `max_in_flight` frames are unanswered, so a fast camera
//! is slowed by QUIC flow control instead of growing the node's memory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ingest::{self, IngestContext};
use super::protocol::{CameraMessage, FrameError, ServerMessage, read_message, write_message};
use crate::domain::Camera;
use crate::tls::{CAMERA_ALPN, NodeIdentity};

/// Creates the QUIC server endpoint bound to `listen`.
pub fn endpoint(identity: &NodeIdentity, listen: std::net::SocketAddr) -> Result<quinn::Endpoint> {
    let tls = identity.server_config(&[CAMERA_ALPN])?;
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC needs TLS 1.3")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_uni_streams(0u8.into());
    transport.max_concurrent_bidi_streams(4u8.into());
    transport.max_idle_timeout(Some(
        Duration::from_secs(30).try_into().context("idle timeout")?,
    ));
    server.transport_config(Arc::new(transport));
    quinn::Endpoint::server(server, listen)
        .with_context(|| format!("binding the camera endpoint on {listen}"))
}

/// Accepts camera connections until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, ctx: Arc<IngestContext>) {
    while let Some(incoming) = endpoint.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(connection) => {
                    ctx.metrics.camera_connections.inc();
                    if let Err(e) = handle_connection(connection, ctx).await {
                        tracing::info!(%remote, "camera connection ended: {e:#}");
                    }
                }
                Err(e) => tracing::info!(%remote, "camera handshake failed: {e}"),
            }
        });
    }
}

async fn handle_connection(connection: quinn::Connection, ctx: Arc<IngestContext>) -> Result<()> {
    let (mut send, mut recv) = connection
        .accept_bi()
        .await
        .context("waiting for the camera's stream")?;
    let max = ctx.limits.max_message_bytes;
    let hello = match read_message::<_, CameraMessage>(&mut recv, max).await {
        Ok(CameraMessage::Hello(hello)) => hello,
        Ok(CameraMessage::Frame(_)) => {
            return refuse(
                &mut send,
                &connection,
                "the first message must be Hello".into(),
            )
            .await;
        }
        Err(e) => return refuse(&mut send, &connection, format!("expected Hello: {e}")).await,
    };
    let camera = match ingest::authenticate(&ctx, &hello).await {
        Ok(camera) => camera,
        Err(reason) => {
            tracing::warn!(camera = %hello.camera_id, remote = %connection.remote_address(), "camera refused: {reason}");
            return refuse(&mut send, &connection, reason).await;
        }
    };
    let window = ctx.limits.max_in_flight;
    write_message(
        &mut send,
        &ServerMessage::Welcome {
            node_id: ctx.node_id.clone(),
            agency_id: camera.agency_id.clone(),
            max_message_bytes: max,
            max_in_flight: window as u32,
        },
    )
    .await?;
    tracing::info!(camera = %camera.id, agency = %camera.agency_id, remote = %connection.remote_address(), "camera connected");

    let (actor, handle) = Actor::spawn(None, CameraConnection, (send, camera.clone(), ctx.clone()))
        .await
        .context("starting the camera connection actor")?;
    let in_flight = Arc::new(Semaphore::new(window));
    loop {
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .context("in-flight window closed")?;
        match read_message::<_, CameraMessage>(&mut recv, max).await {
            Ok(CameraMessage::Frame(frame)) => {
                ctx.metrics.frames_received.inc();
                if actor.cast(ConnectionMsg::Frame(frame, permit)).is_err() {
                    break;
                }
            }
            Ok(CameraMessage::Hello(_)) => {
                let answer = ServerMessage::Rejected {
                    seq: None,
                    reason: "Hello was already received".into(),
                };
                let _ = actor.cast(ConnectionMsg::Answer(answer, permit));
            }
            Err(e) if e.is_recoverable() => {
                ctx.metrics
                    .frames_rejected
                    .with_label_values(&["malformed"])
                    .inc();
                tracing::warn!(camera = %camera.id, "bad message from camera: {e}");
                let answer = ServerMessage::Rejected {
                    seq: None,
                    reason: e.to_string(),
                };
                let _ = actor.cast(ConnectionMsg::Answer(answer, permit));
            }
            Err(FrameError::Closed) => break,
            Err(e) => {
                tracing::info!(camera = %camera.id, "camera stream ended: {e}");
                break;
            }
        }
    }
    // Let frames in flight finish (they are stored and answered if the camera is still there).
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(window as u32),
    )
    .await;
    actor.stop(None);
    let _ = handle.await;
    Ok(())
}

async fn refuse(
    send: &mut quinn::SendStream,
    connection: &quinn::Connection,
    reason: String,
) -> Result<()> {
    let _ = write_message(
        send,
        &ServerMessage::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    let _ = send.finish();
    // Give the Refused message time to leave before closing.
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    connection.close(1u32.into(), b"refused");
    Err(anyhow::anyhow!("refused: {reason}"))
}

pub enum ConnectionMsg {
    /// A frame read from the camera; the permit holds its place in the in-flight window.
    Frame(super::protocol::Frame, OwnedSemaphorePermit),
    /// An answer to send to the camera, releasing the frame's place in the window.
    Answer(ServerMessage, OwnedSemaphorePermit),
}

/// One actor per camera connection: it owns the send side and answers every frame.
struct CameraConnection;

struct ConnectionState {
    send: quinn::SendStream,
    camera: Camera,
    ctx: Arc<IngestContext>,
    open: bool,
}

impl Actor for CameraConnection {
    type Msg = ConnectionMsg;
    type State = ConnectionState;
    type Arguments = (quinn::SendStream, Camera, Arc<IngestContext>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (send, camera, ctx): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ConnectionState {
            send,
            camera,
            ctx,
            open: true,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConnectionMsg::Frame(frame, permit) => {
                let ctx = state.ctx.clone();
                let camera = state.camera.clone();
                tokio::spawn(async move {
                    let seq = frame.seq;
                    let answer = match ingest::process_frame(&ctx, &camera, frame).await {
                        Ok(ack) => {
                            ctx.metrics.frames_acknowledged.inc();
                            ServerMessage::Ack {
                                seq,
                                reads: ack.reads,
                                duplicate: ack.duplicate,
                            }
                        }
                        Err(reason) => {
                            ctx.metrics
                                .frames_rejected
                                .with_label_values(&["refused"])
                                .inc();
                            tracing::warn!(camera = %camera.id, seq, "frame refused: {reason}");
                            ServerMessage::Rejected {
                                seq: Some(seq),
                                reason,
                            }
                        }
                    };
                    let _ = myself.cast(ConnectionMsg::Answer(answer, permit));
                });
            }
            ConnectionMsg::Answer(answer, permit) => {
                if state.open && write_message(&mut state.send, &answer).await.is_err() {
                    // The camera is gone; it will resend what it did not hear about.
                    state.open = false;
                }
                drop(permit);
            }
        }
        Ok(())
    }
}
