//! Attachments through the relay's blob store: encrypted while uploading and decrypted
//! while downloading ([`crate::media`]), in chunks, so memory stays constant whatever
//! the size; both resume where they were after a dropped connection.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroize;

use super::{relay_error, rt, Client, ClientError};
use crate::media::{
    read_some, MediaDecryptor, MediaDigest, MediaEncryptor, MediaError, MediaExpected, MediaKey,
    MediaKind,
};
use crate::sqlite::messages::StoredMessage;
use crate::wire::content::{Content, MediaContent};
use crate::wire::relay::{self as proto, ClientKind};

/// Bytes of blob per request.
const CHUNK: usize = 128 * 1024;
/// How long an upload or download waits for the connection to come back before it
/// gives up (the connection task reconnects by itself).
const RESUME_WAIT: Duration = Duration::from_secs(30);

/// An attachment in the relay's blob store: what a media message carries so that the
/// recipient can fetch, check and decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// What it is (selects the key expansion).
    pub kind: MediaKind,
    /// The blob's id at the relay.
    pub blob_id: Vec<u8>,
    /// The media key.
    pub media_key: MediaKey,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the blob.
    pub file_enc_sha256: [u8; 32],
    /// Length of the plaintext.
    pub file_length: u64,
}

impl Attachment {
    fn expected(&self) -> MediaExpected {
        MediaExpected {
            file_sha256: self.file_sha256,
            file_enc_sha256: self.file_enc_sha256,
            file_length: Some(self.file_length),
        }
    }
}

/// Largest thumbnail a media message may carry (it travels inside the message).
pub const MAX_THUMBNAIL: usize = 64 * 1024;

/// A media message: the attachment and what the app shows before downloading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaMessage {
    /// Where the encrypted file is and how to check and decrypt it.
    pub attachment: Attachment,
    /// MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// The file's name, if it has one.
    pub file_name: String,
    /// A caption (stored as the message body: searchable).
    pub caption: String,
    /// A small preview image (JPEG/PNG, at most 64 KiB), shown before the download.
    pub thumbnail: Vec<u8>,
    /// Pixel size of an image or video (0 if unknown).
    pub width: u32,
    /// Pixel size of an image or video (0 if unknown).
    pub height: u32,
}

impl MediaMessage {
    fn to_content(&self, sent_at: u64) -> MediaContent {
        let a = &self.attachment;
        MediaContent {
            kind: a.kind.code(),
            blob_id: a.blob_id.clone(),
            media_key: a.media_key.as_bytes().to_vec(),
            file_sha256: a.file_sha256.to_vec(),
            file_enc_sha256: a.file_enc_sha256.to_vec(),
            file_length: a.file_length,
            mime_type: self.mime_type.clone(),
            file_name: self.file_name.clone(),
            caption: self.caption.clone(),
            thumbnail: self.thumbnail.clone(),
            width: self.width,
            height: self.height,
            sent_at,
        }
    }

    /// Check a received media message: a known kind, 32-byte key and hashes, a blob
    /// id, a thumbnail within bounds.
    pub(crate) fn from_content(c: MediaContent) -> Result<Self, String> {
        let kind =
            MediaKind::from_code(c.kind).ok_or_else(|| format!("unknown media kind {}", c.kind))?;
        let hash = |v: &[u8], what: &str| {
            <[u8; 32]>::try_from(v).map_err(|_| format!("{what} is not 32 bytes"))
        };
        if c.blob_id.is_empty() || c.blob_id.len() > 64 {
            return Err("bad blob id".into());
        }
        if c.thumbnail.len() > MAX_THUMBNAIL {
            return Err(format!("thumbnail of {} bytes", c.thumbnail.len()));
        }
        Ok(MediaMessage {
            attachment: Attachment {
                kind,
                blob_id: c.blob_id,
                media_key: MediaKey::from_slice(&c.media_key).ok_or("media key is not 32 bytes")?,
                file_sha256: hash(&c.file_sha256, "file SHA-256")?,
                file_enc_sha256: hash(&c.file_enc_sha256, "blob SHA-256")?,
                file_length: c.file_length,
            },
            mime_type: c.mime_type,
            file_name: c.file_name,
            caption: c.caption,
            thumbnail: c.thumbnail,
            width: c.width,
            height: c.height,
        })
    }

    /// The media message of a stored message (`None` for text messages).
    pub fn of(message: &StoredMessage) -> Option<Result<Self, ClientError>> {
        let bytes = message.media.as_deref()?;
        Some(
            Content::decode(bytes)
                .map_err(|e| ClientError::Protocol(e.to_string()))
                .and_then(|c| match c.body {
                    Some(crate::wire::content::Body::Media(m)) => {
                        MediaMessage::from_content(m).map_err(ClientError::Protocol)
                    }
                    _ => Err(ClientError::Protocol(
                        "stored media is not a media message".into(),
                    )),
                }),
        )
    }
}

impl From<MediaError> for ClientError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Io(e) => ClientError::Transport(format!("attachment file: {e}")),
            e => ClientError::Protocol(format!("attachment refused: {e}")),
        }
    }
}

/// What the relay's answer to a blob append means for an upload that may have resent
/// the chunk after a dropped connection.
#[derive(Debug, PartialEq, Eq)]
enum PutOutcome {
    /// Appended now.
    Appended,
    /// The relay is already past this chunk: it was appended before the connection
    /// dropped (the answer was lost).
    AlreadyAppended,
    /// The blob is no longer open: if this was the sealing chunk, it may have gone
    /// through with its answer lost; readable at the full size means done.
    CheckSealed,
    /// A real refusal.
    Refused,
}

fn put_outcome(r: &proto::Response, id: &[u8], end: u64, done: bool) -> PutOutcome {
    if r.ok {
        PutOutcome::Appended
    } else if !id.is_empty() && r.error_code == "BadRequest" && r.blob_size == end {
        PutOutcome::AlreadyAppended
    } else if !id.is_empty() && done && r.error_code == "NotFound" {
        PutOutcome::CheckSealed
    } else {
        PutOutcome::Refused
    }
}

/// Errors after which the same request may simply be sent again.
fn retryable(e: &ClientError) -> bool {
    matches!(e, ClientError::NotConnected | ClientError::Transport(_))
}

impl Client {
    /// Send a media message (an attachment already uploaded with
    /// [`upload_attachment`](Self::upload_attachment)) to every device of `peer`; like
    /// [`send_text`](Self::send_text), stored and queued before this returns. The
    /// stored message's body is the caption; `StoredMessage::media` holds the rest
    /// (read it back with [`MediaMessage::of`]).
    pub async fn send_media(&self, peer: &str, media: &MediaMessage) -> Result<i64, ClientError> {
        let (sent_at, plaintext, stored_media) = self.media_plaintext(media)?;
        let devices = self.prepare_devices(peer).await?;
        self.send_stored(
            peer,
            &devices,
            media.caption.as_bytes(),
            Some(&stored_media),
            &plaintext,
            sent_at,
        )
        .await
    }

    /// A media message to send (its thumbnail checked): its timestamp, the plaintext
    /// and what is stored (the same descriptor without the per-send timestamp).
    pub(super) fn media_plaintext(
        &self,
        media: &MediaMessage,
    ) -> Result<(u64, Vec<u8>, Vec<u8>), ClientError> {
        if media.thumbnail.len() > MAX_THUMBNAIL {
            return Err(ClientError::Config(format!(
                "the thumbnail is {} bytes; at most {MAX_THUMBNAIL}",
                media.thumbnail.len()
            )));
        }
        let sent_at = self.timestamp();
        let plaintext = self.stamp(Content::media(media.to_content(sent_at)));
        Ok((
            sent_at,
            plaintext,
            Content::media(media.to_content(0)).encode(),
        ))
    }

    /// Wait until connected again, or `RESUME_WAIT` has passed since `since`.
    async fn wait_for_link(&self, since: rt::Monotonic) -> bool {
        while since.elapsed() < RESUME_WAIT {
            if self.is_connected() {
                return true;
            }
            rt::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// One request, sent again after a dropped connection (up to `RESUME_WAIT`).
    async fn request_resuming(
        &self,
        kind: impl Fn() -> ClientKind,
    ) -> Result<proto::Response, ClientError> {
        let mut since = rt::Monotonic::now();
        loop {
            match self.request(kind()).await {
                Err(e) if retryable(&e) => {
                    if !self.wait_for_link(since).await {
                        return Err(e);
                    }
                    since = rt::Monotonic::now();
                }
                other => return other,
            }
        }
    }

    /// Append `data` at `offset` of blob `id` (a new blob when `id` is empty); the
    /// blob's id and size after it. A chunk whose answer was lost to a dropped
    /// connection is recognized (the relay reports it is already past it).
    async fn put_chunk(
        &self,
        id: &[u8],
        offset: u64,
        data: &[u8],
        done: bool,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let end = offset + data.len() as u64;
        let r = self
            .request_resuming(|| {
                ClientKind::BlobPut(proto::BlobPut {
                    blob_id: id.to_vec(),
                    offset,
                    data: data.to_vec(),
                    done,
                })
            })
            .await?;
        match put_outcome(&r, id, end, done) {
            PutOutcome::Appended => Ok((r.blob_id, r.blob_size)),
            PutOutcome::AlreadyAppended => Ok((id.to_vec(), end)),
            PutOutcome::CheckSealed => {
                let check = self
                    .request_resuming(|| {
                        ClientKind::BlobGet(proto::BlobGet {
                            blob_id: id.to_vec(),
                            offset: 0,
                            max_len: 1,
                        })
                    })
                    .await?;
                if check.ok && check.blob_size == end {
                    Ok((id.to_vec(), end))
                } else {
                    Err(relay_error(&r))
                }
            }
            PutOutcome::Refused => Err(relay_error(&r)),
        }
    }

    /// Encrypt what `reader` yields as an attachment of `kind` and upload it to the
    /// relay's blob store, chunk by chunk (constant memory). `progress` gets the
    /// plaintext bytes uploaded so far. A dropped connection is waited out (up to 30
    /// s) and the upload continues where it was.
    pub async fn upload_attachment<R: Read>(
        &self,
        kind: MediaKind,
        mut reader: R,
        mut progress: impl FnMut(u64),
    ) -> Result<Attachment, ClientError> {
        let key = MediaKey::generate(&mut rand_core::OsRng);
        let mut enc = Some(MediaEncryptor::new(&key, kind));
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending = Vec::with_capacity(CHUNK + buf.len() + 32);
        let (mut id, mut offset, mut plain_done) = (Vec::new(), 0u64, 0u64);
        let mut digest: Option<MediaDigest> = None;
        while digest.is_none() {
            // Fill a chunk of ciphertext (or finish at the end of the input).
            let mut read_now = 0u64;
            while pending.len() < CHUNK {
                let n = read_some(&mut reader, &mut buf).map_err(MediaError::Io)?;
                let Some(e) = enc.as_mut() else { break };
                if n == 0 {
                    digest = enc.take().map(|e| e.finish(&mut pending));
                    break;
                }
                e.update(&buf[..n], &mut pending);
                read_now += n as u64;
            }
            let done = digest.is_some();
            let (new_id, size) = self.put_chunk(&id, offset, &pending, done).await?;
            id = new_id;
            offset = size;
            pending.clear();
            plain_done += read_now;
            progress(plain_done);
        }
        buf.zeroize();
        let digest = digest.ok_or_else(|| ClientError::Protocol("upload ended early".into()))?;
        Ok(Attachment {
            kind,
            blob_id: id,
            media_key: key,
            file_sha256: digest.file_sha256,
            file_enc_sha256: digest.file_enc_sha256,
            file_length: digest.file_length,
        })
    }

    /// Download an attachment and decrypt it into `writer`, chunk by chunk (constant
    /// memory); `progress` gets the blob bytes downloaded so far. What is written is
    /// unverified until this returns `Ok` (the last checks need the last bytes): use
    /// [`download_attachment_to_file`](Self::download_attachment_to_file) unless the
    /// writer is private to the caller. Resumes after a dropped connection.
    pub async fn download_attachment<W: Write>(
        &self,
        attachment: &Attachment,
        mut writer: W,
        mut progress: impl FnMut(u64),
    ) -> Result<MediaDigest, ClientError> {
        let mut dec = MediaDecryptor::new(&attachment.media_key, attachment.kind);
        let mut out = Vec::with_capacity(CHUNK + 32);
        let mut offset = 0u64;
        loop {
            let r = self
                .request_resuming(|| {
                    ClientKind::BlobGet(proto::BlobGet {
                        blob_id: attachment.blob_id.clone(),
                        offset,
                        max_len: CHUNK as u32,
                    })
                })
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            if r.blob_data.is_empty() && offset < r.blob_size {
                return Err(ClientError::Protocol(
                    "blob download made no progress".into(),
                ));
            }
            dec.update(&r.blob_data, &mut out);
            writer.write_all(&out).map_err(MediaError::Io)?;
            out.zeroize();
            out.clear();
            offset += r.blob_data.len() as u64;
            progress(offset);
            if offset >= r.blob_size {
                break;
            }
        }
        let digest = dec.finish(&attachment.expected(), &mut out)?;
        writer.write_all(&out).map_err(MediaError::Io)?;
        writer.flush().map_err(MediaError::Io)?;
        out.zeroize();
        Ok(digest)
    }

    /// Download an attachment into the file `path`: decrypted into `path.part`, which
    /// is renamed to `path` only after every check passed (blob hash, MAC, plaintext
    /// hash and length) and removed otherwise. Nothing unverified is ever at `path`.
    pub async fn download_attachment_to_file(
        &self,
        attachment: &Attachment,
        path: &Path,
        progress: impl FnMut(u64),
    ) -> Result<MediaDigest, ClientError> {
        let mut part = PathBuf::from(path);
        part.as_mut_os_string().push(".part");
        let file = std::fs::File::create(&part).map_err(MediaError::Io)?;
        let writer = std::io::BufWriter::with_capacity(CHUNK, file);
        let result = self.download_attachment(attachment, writer, progress).await;
        match result {
            Ok(d) => {
                std::fs::rename(&part, path).map_err(MediaError::Io)?;
                Ok(d)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn good() -> MediaContent {
        MediaContent {
            kind: MediaKind::Image.code(),
            blob_id: vec![1; 16],
            media_key: vec![2; 32],
            file_sha256: vec![3; 32],
            file_enc_sha256: vec![4; 32],
            file_length: 10,
            mime_type: "image/png".into(),
            ..MediaContent::default()
        }
    }

    #[test]
    fn a_resent_chunk_is_recognized() {
        let answer = |ok: bool, code: &str, size: u64| proto::Response {
            ok,
            error_code: code.into(),
            blob_size: size,
            ..proto::Response::default()
        };
        let id = [7u8; 16];
        assert_eq!(
            put_outcome(&answer(true, "", 10), &[], 10, false),
            PutOutcome::Appended
        );
        // Resent after the relay had appended it: the relay is at its end.
        assert_eq!(
            put_outcome(&answer(false, "BadRequest", 20), &id, 20, false),
            PutOutcome::AlreadyAppended
        );
        // At another offset: a real error (the upload would skip or repeat bytes).
        assert_eq!(
            put_outcome(&answer(false, "BadRequest", 10), &id, 20, false),
            PutOutcome::Refused
        );
        // The sealing chunk resent: check whether the blob is sealed at full size.
        assert_eq!(
            put_outcome(&answer(false, "NotFound", 0), &id, 20, true),
            PutOutcome::CheckSealed
        );
        assert_eq!(
            put_outcome(&answer(false, "NotFound", 0), &id, 20, false),
            PutOutcome::Refused
        );
        // A first chunk has no id to resume: never "already appended".
        assert_eq!(
            put_outcome(&answer(false, "BadRequest", 20), &[], 20, true),
            PutOutcome::Refused
        );
        assert_eq!(
            put_outcome(&answer(false, "RateLimited", 20), &id, 20, true),
            PutOutcome::Refused
        );
    }

    #[test]
    fn received_media_messages_are_checked() {
        let m = MediaMessage::from_content(good()).unwrap();
        assert_eq!(m.to_content(0), good());
        let bad: Vec<(&str, MediaContent)> = vec![
            ("kind", MediaContent { kind: 99, ..good() }),
            (
                "key",
                MediaContent {
                    media_key: vec![2; 31],
                    ..good()
                },
            ),
            (
                "hash",
                MediaContent {
                    file_sha256: vec![],
                    ..good()
                },
            ),
            (
                "blob hash",
                MediaContent {
                    file_enc_sha256: vec![4; 33],
                    ..good()
                },
            ),
            (
                "blob id",
                MediaContent {
                    blob_id: vec![],
                    ..good()
                },
            ),
            (
                "long blob id",
                MediaContent {
                    blob_id: vec![1; 65],
                    ..good()
                },
            ),
            (
                "thumbnail",
                MediaContent {
                    thumbnail: vec![0; MAX_THUMBNAIL + 1],
                    ..good()
                },
            ),
        ];
        for (what, c) in bad {
            assert!(MediaMessage::from_content(c).is_err(), "{what}");
        }
    }
}
