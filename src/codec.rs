//! Encoding and decoding snapshot blobs in the versioned `SYRS` envelope.

use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_core::snapshot_format::{decode_framed, encode_framed};

use crate::error::{Error, Result};

/// Encodes `snapshot` as it is (callers strip outputs first).
pub(crate) fn encode<C: SnapshotCodec>(codec: &C, snapshot: &WorkflowSnapshot) -> Result<Vec<u8>> {
    encode_framed(codec, snapshot).map_err(Error::Codec)
}

/// Decodes a framed blob; a pre-1.0, foreign-codec or corrupt blob is
/// [`Error::Codec`] with the envelope's own explanation.
pub(crate) fn decode<C: SnapshotCodec>(codec: &C, blob: &[u8]) -> Result<WorkflowSnapshot> {
    decode_framed(codec, blob).map_err(Error::Codec)
}

/// Parses a stored 32-byte task id.
pub(crate) fn task_id(bytes: &[u8]) -> Result<sayiir_core::TaskId> {
    sayiir_core::TaskId::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("stored task id of {} bytes: {e}", bytes.len())))
}
