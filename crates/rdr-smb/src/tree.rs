//! Trees: TREE_CONNECT / TREE_DISCONNECT on a session, share encryption, VALIDATE_NEGOTIATE_INFO
//! on 3.0 / 3.0.2, and the path-based requests that need no open handle (compound
//! create + query + close).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rdr_core::minirdr::{FileInfo, VolumeInfo};
use rdr_core::{NtStatus, RxError, RxResult};

use crate::client::check;
use crate::conn::{Pending, SendOptions};
use crate::open::{file_info_from_all, open_error_path};
use crate::proto::{
    AccessMask, CloseRequest, Command, CompoundBuilder, CreateDisposition, CreateRequest, Dialect,
    FileAllInformation, FileFsFullSizeInformation, FileId, FileInfoClass, FsInfoClass, Header,
    IoctlResponse, Message, QueryInfoRequest, QueryInfoResponse, ShareFlags, SmbMessage,
    TreeConnectRequest, TreeConnectResponse, TreeDisconnectRequest, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use crate::session::Session;

/// A connected share on a session.
pub struct Tree {
    pub(crate) session: Arc<Session>,
    pub(crate) id: u32,
    pub(crate) share: String,
    pub(crate) encrypt: bool,
    disconnected: AtomicBool,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("share", &self.share)
            .field("id", &self.id)
            .field("encrypt", &self.encrypt)
            .finish()
    }
}

impl Tree {
    /// Connects `share` on `session`.
    pub async fn connect(session: &Arc<Session>, share: &str) -> RxResult<Arc<Tree>> {
        let client = &session.client;
        let unc = format!("\\\\{}\\{}", client.server, share);
        let req = TreeConnectRequest {
            flags: Default::default(),
            path: unc.clone(),
        };
        let h = session.header(Command::TREE_CONNECT, 0);
        let mut opts = session.send_options(false);
        // 3.1.1: a TREE_CONNECT that is not encrypted is signed even when the session does
        // not require signing ([MS-SMB2] 3.2.4.1.1; the server drops it otherwise).
        if client.neg.dialect == crate::proto::Dialect::SMB3_1_1
            && !opts.encrypt
            && !session.is_anonymous()
        {
            opts.sign = true;
        }
        let rsp = client
            .conn
            .send(&h, &req, &opts)
            .await
            .map_err(|e| crate::client::name_error(e, &format!("{unc}: TREE_CONNECT")))?;
        check(&rsp, || {
            format!("{unc}: TREE_CONNECT as {:?}", session.user)
        })?;
        let body: TreeConnectResponse = rsp.body()?;
        let encrypt = body.share_flags.contains(ShareFlags::ENCRYPT_DATA);
        if encrypt && client.neg.cipher.is_none() {
            return Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!("{unc}: the share requires encryption, which the dialect does not offer"),
            ));
        }
        let tree = Arc::new(Tree {
            session: session.clone(),
            id: rsp.header.tree_id,
            share: share.to_string(),
            encrypt,
            disconnected: AtomicBool::new(false),
        });
        let d = client.neg.dialect;
        if (d == Dialect::SMB3_0 || d == Dialect::SMB3_0_2)
            && session.sign
            && !session.encrypt
            && let Err(e) = tree.validate_negotiate().await
        {
            let _ = tree.disconnect().await;
            return Err(e);
        }
        Ok(tree)
    }

    /// FSCTL_VALIDATE_NEGOTIATE_INFO: the server confirms what was negotiated, so a
    /// downgrade by a man in the middle is detected ([MS-SMB2] 3.2.5.14.12).
    async fn validate_negotiate(&self) -> RxResult<()> {
        let neg = &self.session.client.neg;
        let req = ValidateNegotiateInfoRequest {
            capabilities: neg.offered.capabilities,
            guid: neg.offered.client_guid,
            security_mode: neg.offered.security_mode,
            dialects: neg.offered.dialects.clone(),
        }
        .to_ioctl()?;
        let what = || format!("{}: VALIDATE_NEGOTIATE_INFO", self.unc());
        let rsp = self.send(&req).await?;
        check(&rsp, what)?;
        let io: IoctlResponse = rsp.body()?;
        let v = ValidateNegotiateInfoResponse::parse(&io.output)?;
        if v.dialect != neg.dialect
            || v.guid != neg.server_guid
            || v.security_mode != neg.server_security_mode
            || v.capabilities != neg.capabilities
        {
            self.session.client.conn.shutdown().await;
            return Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!("{}: the server's answer does not match NEGOTIATE", what()),
            ));
        }
        Ok(())
    }

    /// `\\server\share`.
    pub fn unc(&self) -> String {
        format!("\\\\{}\\{}", self.session.client.server, self.share)
    }

    /// `\\server\share\path`.
    pub(crate) fn unc_path(&self, path: &str) -> String {
        if path.is_empty() {
            self.unc()
        } else {
            format!("{}\\{}", self.unc(), path)
        }
    }

    /// The session this tree belongs to.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The share name.
    pub fn share(&self) -> &str {
        &self.share
    }

    /// True when the share demands encryption.
    pub fn encrypts(&self) -> bool {
        self.encrypt || self.session.encrypt
    }

    pub(crate) fn header(&self, command: Command) -> Header {
        self.session.header(command, self.id)
    }

    pub(crate) fn opts(&self) -> SendOptions {
        self.session.send_options(self.encrypt)
    }

    /// Sends one request on this tree; `Pending` for requests that may stay pending.
    pub(crate) async fn submit<M: SmbMessage>(&self, body: &M) -> RxResult<Pending> {
        let h = self.header(M::COMMAND);
        self.session
            .client
            .conn
            .submit(&h, body, &self.opts())
            .await
    }

    /// Sends one request on this tree and waits for its response.
    pub(crate) async fn send<M: SmbMessage>(&self, body: &M) -> RxResult<Message> {
        self.submit(body).await?.wait().await
    }

    /// Sends CREATE + QUERY_INFO + CLOSE in one compound and returns the QUERY_INFO output.
    /// The CLOSE of the handle the compound's CREATE opened.
    fn push_related_close(&self, cb: &mut CompoundBuilder) -> RxResult<()> {
        cb.push(
            &self.header(Command::CLOSE),
            &CloseRequest {
                flags: 0,
                file_id: FileId::RELATED,
            },
            true,
        )?;
        Ok(())
    }

    /// Sends a compound (`sizes`: payload bytes per message) and waits for every response,
    /// in order.
    async fn send_compound(
        &self,
        cb: CompoundBuilder,
        sizes: &[usize],
        h: &Header,
    ) -> RxResult<Vec<RxResult<Message>>> {
        let pendings = self
            .session
            .client
            .conn
            .submit_compound(cb, sizes, h, &self.opts())
            .await?;
        let mut rsps = Vec::with_capacity(pendings.len());
        for p in pendings {
            rsps.push(p.wait().await);
        }
        Ok(rsps)
    }

    async fn compound_query(&self, path: &str, query: QueryInfoRequest) -> RxResult<Bytes> {
        let create = CreateRequest {
            desired_access: AccessMask::FILE_READ_ATTRIBUTES | AccessMask::SYNCHRONIZE,
            create_disposition: CreateDisposition::OPEN,
            name: path.to_string(),
            ..CreateRequest::default()
        };
        let mut cb = CompoundBuilder::new();
        let h = self.header(Command::CREATE);
        cb.push(&h, &create, false)?;
        let q = QueryInfoRequest {
            file_id: FileId::RELATED,
            ..query
        };
        let sizes = [0usize, q.payload_size(), 0];
        cb.push(&self.header(Command::QUERY_INFO), &q, true)?;
        self.push_related_close(&mut cb)?;
        let rsps = self.send_compound(cb, &sizes, &h).await?;
        let mut it = rsps.into_iter();
        let (Some(c), Some(qr), Some(_close)) = (it.next(), it.next(), it.next()) else {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                "compound: missing responses",
            ));
        };
        let c = c?;
        check(&c, || open_error_path(self, path, "open"))?;
        let qr = qr?;
        check(&qr, || format!("{}: QUERY_INFO", self.unc_path(path)))?;
        Ok(qr.body::<QueryInfoResponse>()?.output)
    }

    /// Deletes the file `path` in one round trip: CREATE (delete-on-close) + CLOSE as one
    /// compound. The open fails as the deletion would (missing, read-only, in use); the close
    /// is when the server deletes it.
    pub async fn delete_file(&self, path: &str) -> RxResult<()> {
        let create = CreateRequest {
            desired_access: AccessMask::DELETE
                | AccessMask::FILE_READ_ATTRIBUTES
                | AccessMask::SYNCHRONIZE,
            create_disposition: CreateDisposition::OPEN,
            create_options: crate::proto::CreateOptions::NON_DIRECTORY_FILE
                | crate::proto::CreateOptions::DELETE_ON_CLOSE,
            name: path.to_string(),
            ..CreateRequest::default()
        };
        let mut cb = CompoundBuilder::new();
        let h = self.header(Command::CREATE);
        cb.push(&h, &create, false)?;
        self.push_related_close(&mut cb)?;
        let rsps = self.send_compound(cb, &[0, 0], &h).await?;
        let mut it = rsps.into_iter();
        let (Some(c), Some(close)) = (it.next(), it.next()) else {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                "compound: missing responses",
            ));
        };
        check(&c?, || open_error_path(self, path, "delete"))?;
        check(&close?, || {
            format!("{}: CLOSE (delete)", self.unc_path(path))
        })
    }

    /// Creates (or replaces) `path` with `data` in one round trip: CREATE + WRITE + CLOSE as
    /// one compound. For many small files, call it from several tasks at once.
    pub async fn put_file(&self, path: &str, data: Bytes) -> RxResult<()> {
        let create = CreateRequest {
            desired_access: AccessMask::FILE_WRITE_DATA
                | AccessMask::FILE_READ_ATTRIBUTES
                | AccessMask::SYNCHRONIZE,
            create_disposition: CreateDisposition::OVERWRITE_IF,
            create_options: crate::proto::CreateOptions::NON_DIRECTORY_FILE,
            name: path.to_string(),
            ..CreateRequest::default()
        };
        let len = data.len();
        let write = crate::proto::WriteRequest {
            offset: 0,
            file_id: FileId::RELATED,
            channel: 0,
            remaining_bytes: 0,
            flags: 0,
            data,
        };
        let mut cb = CompoundBuilder::new();
        let h = self.header(Command::CREATE);
        cb.push(&h, &create, false)?;
        cb.push(&self.header(Command::WRITE), &write, true)?;
        self.push_related_close(&mut cb)?;
        let rsps = self.send_compound(cb, &[0, len, 0], &h).await?;
        let mut it = rsps.into_iter();
        let (Some(c), Some(w), Some(cl)) = (it.next(), it.next(), it.next()) else {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                "compound: missing responses",
            ));
        };
        check(&c?, || open_error_path(self, path, "create"))?;
        let w = w?;
        check(&w, || format!("{}: WRITE", self.unc_path(path)))?;
        let n = w.body::<crate::proto::WriteResponse>()?.count as usize;
        check(&cl?, || format!("{}: CLOSE", self.unc_path(path)))?;
        if n != len {
            return Err(RxError::status(
                NtStatus::STATUS_DISK_FULL,
                format!("{}: wrote {n} of {len} bytes", self.unc_path(path)),
            ));
        }
        Ok(())
    }

    /// Metadata of `path` without keeping a handle (compound create/query/close).
    pub async fn query_path_info(&self, path: &str) -> RxResult<FileInfo> {
        let out = self
            .compound_query(
                path,
                QueryInfoRequest::file(FileId::RELATED, FileInfoClass::FileAllInformation, 4096),
            )
            .await?;
        Ok(file_info_from_all(&FileAllInformation::parse(&out)?))
    }

    /// Size and free space of the share.
    pub async fn query_volume(&self) -> RxResult<VolumeInfo> {
        let out = self
            .compound_query(
                "",
                QueryInfoRequest::fs(FileId::RELATED, FsInfoClass::FileFsFullSizeInformation, 64),
            )
            .await?;
        let f = FileFsFullSizeInformation::parse(&out)?;
        let unit = u64::from(f.sectors_per_allocation_unit) * u64::from(f.bytes_per_sector);
        Ok(VolumeInfo {
            total_bytes: f.total_allocation_units.saturating_mul(unit),
            free_bytes: f.caller_available_allocation_units.saturating_mul(unit),
            block_size: u32::try_from(unit).unwrap_or(4096),
        })
    }

    /// Disconnects the tree (the session stays).
    pub async fn disconnect(&self) -> RxResult<()> {
        if self.disconnected.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let rsp = self.send(&TreeDisconnectRequest).await?;
        check(&rsp, || format!("{}: TREE_DISCONNECT", self.unc()))
    }

    /// True after [`disconnect`](Self::disconnect).
    pub fn is_disconnected(&self) -> bool {
        self.disconnected.load(Ordering::SeqCst)
    }
}
