//! The relay's blob store: encrypted attachments and history uploaded in chunks.

use super::*;
use crate::wire::relay::{self as proto, ClientKind};

impl Client {
    /// Upload an (already encrypted) blob in chunks; returns its id. `progress` is
    /// called with the bytes sent so far.
    pub async fn upload_blob(
        &self,
        data: &[u8],
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<u8>, ClientError> {
        const CHUNK: usize = 128 * 1024;
        let mut id = Vec::new();
        let mut offset = 0usize;
        loop {
            let end = (offset + CHUNK).min(data.len());
            let r = self
                .request(ClientKind::BlobPut(proto::BlobPut {
                    blob_id: id.clone(),
                    offset: offset as u64,
                    data: data[offset..end].to_vec(),
                    done: end == data.len(),
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            id = r.blob_id;
            offset = end;
            progress(offset as u64);
            if offset == data.len() {
                return Ok(id);
            }
        }
    }

    /// Download a blob by id.
    pub async fn download_blob(&self, id: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        loop {
            let r = self
                .request(ClientKind::BlobGet(proto::BlobGet {
                    blob_id: id.to_vec(),
                    offset: out.len() as u64,
                    max_len: 128 * 1024,
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            if r.blob_data.is_empty() && (out.len() as u64) < r.blob_size {
                return Err(ClientError::Protocol(
                    "blob download made no progress".into(),
                ));
            }
            out.extend_from_slice(&r.blob_data);
            if out.len() as u64 >= r.blob_size {
                return Ok(out);
            }
        }
    }
}
