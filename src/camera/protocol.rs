//! The camera protocol: message types and framing over one bidirectional QUIC stream.
//!
//! Every message is a 4-byte big-endian length followed by that many bytes of a bincode-2
//! (standard configuration) encoding of [`CameraMessage`] (camera to server) or
//! [`ServerMessage`] (server to camera). The camera starts with `Hello`; the server answers
//! `Welcome` or `Refused`. Then the camera sends `Frame`s without waiting (up to the window the
//! server announces); the server answers each frame, possibly out of order, with `Ack` once its
//! reads are durably stored, or `Rejected` when the frame cannot be accepted (it will never be;
//! do not resend). A frame not answered before the connection drops is resent after reconnecting
//! with the same `seq`; the server stores it once and acknowledges it again with `duplicate`.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::domain::GeoPoint;
use crate::util::Millis;

pub const PROTOCOL_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CameraMessage {
    Hello(Hello),
    Frame(Frame),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u16,
    pub camera_id: String,
    /// The credential issued when the camera was registered.
    pub secret: String,
}

/// One captured frame. `seq` is unique per camera and stable across resends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub seq: u64,
    pub captured_at: Millis,
    /// JPEG or PNG bytes; may be empty when the camera sends only edge reads.
    pub image: Vec<u8>,
    pub position: Option<GeoPoint>,
    pub heading_degrees: Option<f32>,
    /// Plates the camera recognized itself.
    pub edge_reads: Vec<EdgeRead>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRead {
    pub plate: String,
    pub plate_state: Option<String>,
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    Welcome {
        node_id: String,
        agency_id: String,
        max_message_bytes: u32,
        max_in_flight: u32,
    },
    Refused {
        reason: String,
    },
    Ack {
        seq: u64,
        reads: Vec<AckedRead>,
        duplicate: bool,
    },
    /// `seq` is None when the message could not even be decoded.
    Rejected {
        seq: Option<u64>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckedRead {
    pub read_id: String,
    pub plate: String,
    pub confidence: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream cleanly between messages.
    #[error("stream closed")]
    Closed,
    /// A message larger than allowed; its bytes were skipped and the stream is still usable.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: u32, max: u32 },
    /// The bytes were read but are not a valid message; the stream is still usable.
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the stream can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FrameError::TooLarge { .. } | FrameError::Malformed(_))
    }
}

/// Writes one length-prefixed message.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    message: &T,
) -> Result<(), FrameError> {
    let body = bincode::serde::encode_to_vec(message, bincode::config::standard())
        .map_err(|e| FrameError::Malformed(format!("encoding: {e}")))?;
    let len = u32::try_from(body.len())
        .map_err(|_| FrameError::Malformed("message over 4 GiB".into()))?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(&body).await?;
    Ok(())
}

/// Reads one length-prefixed message of at most `max` bytes.
pub async fn read_message<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    reader: &mut R,
    max: u32,
) -> Result<T, FrameError> {
    let mut len_bytes = [0u8; 4];
    match reader.read_exact(&mut len_bytes).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len_bytes);
    if len > max {
        // Skip the body so that the next message can still be read.
        let copied = tokio::io::copy(&mut reader.take(len as u64), &mut tokio::io::sink()).await?;
        if copied < len as u64 {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body).await?;
    let (message, used) = bincode::serde::decode_from_slice(&body, bincode::config::standard())
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::Malformed(format!(
            "{} unexpected trailing bytes",
            body.len() - used
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_and_bad_ones_leave_the_stream_usable() {
        let frame = CameraMessage::Frame(Frame {
            seq: 7,
            captured_at: 1_700_000_000_000,
            image: vec![1, 2, 3],
            position: Some(GeoPoint {
                lat: 47.6,
                lon: -122.3,
            }),
            heading_degrees: Some(90.0),
            edge_reads: vec![EdgeRead {
                plate: "ABC123".into(),
                plate_state: None,
                confidence: 0.9,
            }],
        });
        let mut wire = Vec::new();
        // An oversized message, garbage of a valid size, then a good message.
        wire.extend_from_slice(&100u32.to_be_bytes());
        wire.extend_from_slice(&[0u8; 100]);
        wire.extend_from_slice(&3u32.to_be_bytes());
        wire.extend_from_slice(&[0xff, 0xff, 0xff]);
        write_message(&mut wire, &frame).await.unwrap();
        let mut reader = wire.as_slice();
        let first = read_message::<_, CameraMessage>(&mut reader, 64).await;
        assert!(matches!(
            first,
            Err(FrameError::TooLarge { len: 100, max: 64 })
        ));
        let second = read_message::<_, CameraMessage>(&mut reader, 64).await;
        assert!(matches!(second, Err(FrameError::Malformed(_))));
        let third: CameraMessage = read_message(&mut reader, 64).await.unwrap();
        assert_eq!(third, frame);
        assert!(matches!(
            read_message::<_, CameraMessage>(&mut reader, 64).await,
            Err(FrameError::Closed)
        ));
    }
}
