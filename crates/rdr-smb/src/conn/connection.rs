//! The connection engine: one TCP connection (TCP_NODELAY), one reader task that routes
//! responses to their waiters by MessageId, credit accounting (multi-credit requests and
//! credits granted by interim responses), async responses, CANCEL, ECHO, unsolicited
//! oplock/lease breaks, and failing every waiter at once when the connection dies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use rdr_core::{NtStatus, RxError, RxResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::credits::CreditWindow;
use super::security::SessionSecurity;
use crate::proto::{
    Capabilities, Command, CompoundBuilder, Dialect, EchoRequest, FrameDecoder, FrameKind, Header,
    HeaderFlags, MAX_FRAME_LEN, Message, NETBIOS_HEADER_SIZE, NegotiateRequest, NegotiateResponse,
    SmbMessage, TransformHeader, WriteRequest, begin_frame, classify, credit_charge_for,
    encode_message, finish_frame, patch_request_header, set_signed_flag, signature_range,
    split_compound,
};

/// MessageId of unsolicited server messages (oplock and lease break notifications).
pub const UNSOLICITED_MESSAGE_ID: u64 = u64::MAX;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Largest frame accepted from the server.
    pub max_frame: usize,
    /// Credits the client asks the server to let it hold.
    pub credit_target: u16,
    /// Time allowed for the TCP connect.
    pub connect_timeout: Duration,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_frame: MAX_FRAME_LEN,
            credit_target: 512,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// How one request is protected.
#[derive(Clone, Default)]
pub struct SendOptions {
    /// The session's keys (needed to sign or encrypt).
    pub security: Option<Arc<dyn SessionSecurity>>,
    /// Sign the request.
    pub sign: bool,
    /// Encrypt the request (TRANSFORM header).
    pub encrypt: bool,
}

impl SendOptions {
    fn security(&self) -> RxResult<&Arc<dyn SessionSecurity>> {
        self.security.as_ref().ok_or_else(|| {
            RxError::status(
                NtStatus::STATUS_INVALID_PARAMETER,
                "signing or encryption asked without session keys",
            )
        })
    }
}

/// The outcome of [`Connection::negotiate`].
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// The decoded NEGOTIATE response.
    pub response: NegotiateResponse,
    /// The NEGOTIATE request as sent (SMB2 message, no NetBIOS header).
    pub request_bytes: Bytes,
    /// The NEGOTIATE response as received.
    pub response_bytes: Bytes,
}

/// A request on the wire whose final response is still to come.
#[derive(Debug)]
pub struct Pending {
    message_id: u64,
    request: Bytes,
    rx: oneshot::Receiver<RxResult<Delivered>>,
}

impl Pending {
    /// The MessageId the request was sent with (what [`Connection::cancel`] takes).
    pub fn message_id(&self) -> u64 {
        self.message_id
    }

    /// For NEGOTIATE and SESSION_SETUP, the request as sent (signed, before encryption, without
    /// its NetBIOS header), for the 3.1.1 preauth integrity hash; empty for other commands.
    pub fn request_bytes(&self) -> &Bytes {
        &self.request
    }

    /// Waits for the final response at most `limit`; past it, STATUS_IO_TIMEOUT (the request
    /// stays outstanding on the server: send [`Connection::cancel`] or drop the connection).
    pub async fn wait_timeout(self, limit: Duration) -> RxResult<Message> {
        let mid = self.message_id;
        match tokio::time::timeout(limit, self.wait()).await {
            Ok(r) => r,
            Err(_) => Err(RxError::status(
                NtStatus::STATUS_IO_TIMEOUT,
                format!("no response to MessageId {mid} within {limit:?}"),
            )),
        }
    }

    /// Waits for the final response (interim STATUS_PENDING responses are absorbed).
    pub async fn wait(self) -> RxResult<Message> {
        match self.rx.await {
            // The signature is checked here, in the waiting task, so the reader task goes on
            // receiving while responses are verified.
            Ok(Ok(Delivered(m, Some(sec)))) => verify(&*sec, &m).map(|_| m),
            Ok(Ok(Delivered(m, None))) => Ok(m),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RxError::status(
                NtStatus::STATUS_CONNECTION_DISCONNECTED,
                "SMB connection closed before the response arrived",
            )),
        }
    }
}

/// A final response and the keys to verify it with (none when it came encrypted or the
/// session has no keys yet).
struct Delivered(Message, Option<Arc<dyn SessionSecurity>>);

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Delivered")
            .field(&self.0.header.command)
            .finish()
    }
}

struct Waiter {
    tx: oneshot::Sender<RxResult<Delivered>>,
    async_id: Option<u64>,
    session_id: u64,
    tree_id: u32,
}

struct State {
    credits: CreditWindow,
    large_mtu: bool,
    waiters: HashMap<u64, Waiter>,
    dead: Option<RxError>,
    sessions: HashMap<u64, Arc<dyn SessionSecurity>>,
}

struct Inner {
    state: Mutex<State>,
    credit_notify: Notify,
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    unsolicited_tx: mpsc::UnboundedSender<Message>,
    unsolicited_rx: Mutex<Option<mpsc::UnboundedReceiver<Message>>>,
    peer: String,
}

struct ReaderGuard(JoinHandle<()>);
impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One SMB2/3 connection to a server. Cheap to clone; the reader task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
    _reader: Arc<ReaderGuard>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.inner.peer)
            .field("credits", &self.available_credits())
            .finish()
    }
}

fn io_error(what: &str, e: &std::io::Error) -> RxError {
    let status = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => NtStatus::STATUS_CONNECTION_REFUSED,
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            NtStatus::STATUS_CONNECTION_RESET
        }
        std::io::ErrorKind::TimedOut => NtStatus::STATUS_IO_TIMEOUT,
        _ => NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR,
    };
    RxError::status(status, format!("{what}: {e}"))
}

impl Connection {
    /// Connects to `addr` and starts the reader task (needs a tokio runtime).
    pub async fn connect(addr: SocketAddr, config: ConnConfig) -> RxResult<Connection> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                RxError::status(
                    NtStatus::STATUS_IO_TIMEOUT,
                    format!("connect to {addr}: timed out"),
                )
            })?
            .map_err(|e| io_error(&format!("connect to {addr}"), &e))?;
        Connection::from_stream(stream, config)
    }

    /// Wraps a connected stream (sets TCP_NODELAY) and starts the reader task.
    pub fn from_stream(stream: TcpStream, config: ConnConfig) -> RxResult<Connection> {
        stream
            .set_nodelay(true)
            .map_err(|e| io_error("set TCP_NODELAY", &e))?;
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let (rd, wr) = stream.into_split();
        let (utx, urx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                credits: CreditWindow::new(config.credit_target),
                large_mtu: false,
                waiters: HashMap::new(),
                dead: None,
                sessions: HashMap::new(),
            }),
            credit_notify: Notify::new(),
            writer: tokio::sync::Mutex::new(Some(wr)),
            unsolicited_tx: utx,
            unsolicited_rx: Mutex::new(Some(urx)),
            peer,
        });
        let task = tokio::spawn(reader_loop(inner.clone(), rd, config.max_frame));
        Ok(Connection {
            inner,
            _reader: Arc::new(ReaderGuard(task)),
        })
    }

    /// After NEGOTIATE: multi-credit requests are allowed (dialect 2.1+ with LARGE_MTU).
    /// Without it every request has CreditCharge 0 and consumes one credit.
    pub fn set_large_mtu(&self, on: bool) {
        self.inner.state.lock().large_mtu = on;
    }

    /// Registers a session's keys so encrypted responses can be decrypted and signed ones
    /// verified.
    pub fn register_session(&self, security: Arc<dyn SessionSecurity>) {
        let id = security.session_id();
        self.inner.state.lock().sessions.insert(id, security);
    }

    /// Forgets a session's keys (after LOGOFF).
    pub fn unregister_session(&self, session_id: u64) {
        self.inner.state.lock().sessions.remove(&session_id);
    }

    /// The receiver of unsolicited server messages (oplock and lease break notifications);
    /// `None` after the first call.
    pub fn take_unsolicited(&self) -> Option<mpsc::UnboundedReceiver<Message>> {
        self.inner.unsolicited_rx.lock().take()
    }

    /// Credits available now.
    pub fn available_credits(&self) -> u32 {
        self.inner.state.lock().credits.available()
    }

    /// Requests awaiting their final response.
    pub fn outstanding(&self) -> usize {
        self.inner.state.lock().credits.outstanding()
    }

    /// The error the connection died of, if it is dead.
    pub fn dead(&self) -> Option<RxError> {
        self.inner.state.lock().dead.clone()
    }

    /// The server address.
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// Sends one request and returns its [`Pending`] response. MessageId, CreditCharge and
    /// CreditRequest in `header` are replaced; the rest (SessionId, TreeId, flags) is used
    /// as given.
    pub async fn submit<M: SmbMessage>(
        &self,
        header: &Header,
        body: &M,
        opts: &SendOptions,
    ) -> RxResult<Pending> {
        let mut buf = BytesMut::with_capacity(256);
        let frame = begin_frame(&mut buf);
        let range = encode_message(header, body, &mut buf)?;
        let charge = self.charge_for(body.payload_size());
        let mut p = self
            .transmit(
                buf,
                frame,
                std::iter::once(range).collect(),
                vec![charge],
                None,
                header,
                opts,
            )
            .await?;
        p.pop().ok_or_else(|| internal("no pending request"))
    }

    /// Sends one request and waits for its final response.
    pub async fn send<M: SmbMessage>(
        &self,
        header: &Header,
        body: &M,
        opts: &SendOptions,
    ) -> RxResult<Message> {
        self.submit(header, body, opts).await?.wait().await
    }

    /// Sends a WRITE with its payload kept apart: header and fixed part from one buffer, the
    /// payload from `req.data`, in one vectored write (no copy unless encrypting).
    #[allow(clippy::single_range_in_vec_init)]
    pub async fn submit_write(
        &self,
        header: &Header,
        req: &WriteRequest,
        opts: &SendOptions,
    ) -> RxResult<Pending> {
        let mut buf = BytesMut::with_capacity(128);
        let frame = begin_frame(&mut buf);
        let start = buf.len();
        let mut h = header.clone();
        h.command = Command::WRITE;
        h.encode(&mut buf);
        req.encode_head(&mut buf)?;
        let charge = self.charge_for(req.data.len());
        let payload = if req.data.is_empty() {
            None
        } else {
            Some(req.data.clone())
        };
        let mut p = self
            .transmit(
                buf,
                frame,
                std::iter::once(start..start).collect(),
                vec![charge],
                payload,
                header,
                opts,
            )
            .await?;
        p.pop().ok_or_else(|| internal("no pending request"))
    }

    /// Sends a compound built with [`CompoundBuilder`]; `payload_sizes` gives each member's
    /// [`SmbMessage::payload_size`] for its CreditCharge. One [`Pending`] per member.
    pub async fn submit_compound(
        &self,
        compound: CompoundBuilder,
        payload_sizes: &[usize],
        first_header: &Header,
        opts: &SendOptions,
    ) -> RxResult<Vec<Pending>> {
        let (body, ranges) = compound.finish();
        if ranges.is_empty() || payload_sizes.len() != ranges.len() {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_PARAMETER,
                "compound: one payload size per member is needed",
            ));
        }
        let mut buf = BytesMut::with_capacity(NETBIOS_HEADER_SIZE + body.len());
        let frame = begin_frame(&mut buf);
        let off = buf.len();
        buf.extend_from_slice(&body);
        let ranges = ranges
            .into_iter()
            .map(|r| r.start + off..r.end + off)
            .collect();
        let charges = payload_sizes.iter().map(|&s| self.charge_for(s)).collect();
        self.transmit(buf, frame, ranges, charges, None, first_header, opts)
            .await
    }

    /// Runs NEGOTIATE: sends `req`, checks the answer, and turns on multi-credit requests when
    /// the server offers LARGE_MTU on 2.1+. Returns the response with the raw request and
    /// response bytes (the first two inputs of the 3.1.1 preauth integrity hash).
    pub async fn negotiate(&self, req: &NegotiateRequest) -> RxResult<Negotiated> {
        let p = self
            .submit(
                &Header::request(Command::NEGOTIATE),
                req,
                &SendOptions::default(),
            )
            .await?;
        let request_bytes = p.request_bytes().clone();
        let m = p.wait().await?;
        if m.header.status != NtStatus::STATUS_SUCCESS {
            return Err(RxError::status(
                m.header.status,
                format!("NEGOTIATE with {}", self.inner.peer),
            ));
        }
        let response: NegotiateResponse = m.body()?;
        if !req.dialects.contains(&response.dialect) {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                format!(
                    "{} chose dialect {:?}, which was not offered",
                    self.inner.peer, response.dialect
                ),
            ));
        }
        self.set_large_mtu(
            response.dialect >= Dialect::SMB2_1
                && response.capabilities.contains(Capabilities::LARGE_MTU),
        );
        Ok(Negotiated {
            response,
            request_bytes,
            response_bytes: m.bytes,
        })
    }

    /// Sends ECHO and waits for the answer.
    pub async fn echo(&self) -> RxResult<()> {
        let rsp = self
            .send(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await?;
        if rsp.header.status != NtStatus::STATUS_SUCCESS {
            return Err(RxError::status(rsp.header.status, "ECHO"));
        }
        rsp.body::<crate::proto::EchoResponse>()?;
        Ok(())
    }

    /// Sends CANCEL for the request sent with `message_id` (its AsyncId once an interim
    /// response gave one). CANCEL takes no credit and has no response: the cancelled
    /// request completes, usually with STATUS_CANCELLED.
    pub async fn cancel(&self, message_id: u64, opts: &SendOptions) -> RxResult<()> {
        let (async_id, session_id, tree_id) = {
            let st = self.inner.state.lock();
            if let Some(e) = &st.dead {
                return Err(e.clone());
            }
            match st.waiters.get(&message_id) {
                Some(w) => (w.async_id, w.session_id, w.tree_id),
                None => return Ok(()), // already answered
            }
        };
        let h = Header {
            command: Command::CANCEL,
            credits: 0,
            credit_charge: 0,
            message_id,
            async_id,
            session_id,
            tree_id,
            ..Default::default()
        };
        let mut buf = BytesMut::with_capacity(NETBIOS_HEADER_SIZE + 68);
        let frame = begin_frame(&mut buf);
        let range = encode_message(&h, &crate::proto::CancelRequest, &mut buf)?;
        let buf = self.protect(buf, frame, &[range], None, opts)?;
        self.write_frame(buf, None).await
    }

    fn charge_for(&self, payload: usize) -> u16 {
        if self.inner.state.lock().large_mtu {
            credit_charge_for(payload)
        } else {
            0
        }
    }

    /// Waits for credits, assigns MessageIds, registers waiters, signs/encrypts and writes.
    #[allow(clippy::too_many_arguments)]
    async fn transmit(
        &self,
        mut buf: BytesMut,
        frame: usize,
        ranges: Vec<Range<usize>>,
        charges: Vec<u16>,
        payload: Option<Bytes>,
        header: &Header,
        opts: &SendOptions,
    ) -> RxResult<Vec<Pending>> {
        if charges.iter().any(|&c| c > 8192) {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_PARAMETER,
                "request too large for one SMB2 message",
            ));
        }
        // 1. Credits (may wait for responses to grant more).
        let ids = loop {
            let notified = self.inner.credit_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.inner.state.lock();
                if let Some(e) = &st.dead {
                    return Err(e.clone());
                }
                if let Some(ids) = st.credits.try_acquire(&charges) {
                    break ids;
                }
                if st.credits.starved(&charges) {
                    return Err(RxError::status(
                        NtStatus::STATUS_INSUFFICIENT_RESOURCES,
                        format!(
                            "{}: the server granted no credits and no response is due",
                            self.inner.peer
                        ),
                    ));
                }
            }
            notified.await;
        };
        // 2. Patch ids and credits, register waiters.
        let mut receivers = Vec::with_capacity(ids.len());
        {
            let mut st = self.inner.state.lock();
            for ((r, &mid), &charge) in ranges.iter().zip(&ids).zip(&charges) {
                let req = st.credits.credit_request(charge);
                // A vectored WRITE's range is empty (start..start): the header is at start.
                if let Err(e) = patch_request_header(&mut buf, r.start, mid, charge, req) {
                    for _ in 0..ids.len() {
                        st.credits.abandoned();
                    }
                    for (m, _) in &receivers {
                        st.waiters.remove(m);
                    }
                    return Err(e.into());
                }
                let (tx, rx) = oneshot::channel();
                st.waiters.insert(
                    mid,
                    Waiter {
                        tx,
                        async_id: None,
                        session_id: header.session_id,
                        tree_id: header.tree_id,
                    },
                );
                receivers.push((mid, rx));
            }
        }
        let ranges: Vec<Range<usize>> = ranges
            .into_iter()
            .map(|r| if r.is_empty() { r.start..buf.len() } else { r })
            .collect();
        // Only NEGOTIATE and SESSION_SETUP feed the preauth integrity hash: keep their bytes.
        let first_cmd = ranges
            .first()
            .and_then(|r| buf.get(r.start + 12..r.start + 14))
            .map(|c| Command(u16::from_le_bytes([c[0], c[1]])));
        let keep = matches!(
            first_cmd,
            Some(Command::NEGOTIATE) | Some(Command::SESSION_SETUP)
        );
        let request_bytes = match (ranges.first(), ranges.last()) {
            (Some(a), Some(b)) if keep => {
                Bytes::copy_from_slice(buf.get(a.start..b.end).unwrap_or(&[]))
            }
            _ => Bytes::new(),
        };
        // 3. Protect and write; on failure the waiters are removed again.
        let result = match self.protect(buf, frame, &ranges, payload.as_ref(), opts) {
            Ok(buf) => {
                let payload = if opts.encrypt { None } else { payload };
                self.write_frame(buf, payload).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let mut st = self.inner.state.lock();
            for (mid, _) in &receivers {
                if st.waiters.remove(mid).is_some() {
                    st.credits.abandoned();
                }
            }
            return Err(e);
        }
        Ok(receivers
            .into_iter()
            .map(|(message_id, rx)| Pending {
                message_id,
                request: request_bytes.clone(),
                rx,
            })
            .collect())
    }

    /// Signs each message and/or encrypts the whole frame; returns the frame to write.
    fn protect(
        &self,
        mut buf: BytesMut,
        frame: usize,
        ranges: &[Range<usize>],
        payload: Option<&Bytes>,
        opts: &SendOptions,
    ) -> RxResult<BytesMut> {
        if opts.sign && !opts.encrypt {
            let sec = opts.security()?;
            let last = ranges.len().saturating_sub(1);
            for (i, r) in ranges.iter().enumerate() {
                set_signed_flag(&mut buf, r.start)?;
                let msg = buf
                    .get(r.clone())
                    .ok_or_else(|| internal("message range outside the buffer"))?;
                let sig = match payload {
                    Some(p) if i == last => sec.sign(&[msg, p])?,
                    _ => sec.sign(&[msg])?,
                };
                if let Some(s) = buf.get_mut(signature_range(r.start)) {
                    s.copy_from_slice(&sig);
                }
            }
        }
        let extra = if opts.encrypt {
            let sec = opts.security()?;
            let mut plain = buf.split_off(frame + NETBIOS_HEADER_SIZE);
            if let Some(p) = payload {
                plain.extend_from_slice(p);
            }
            let t = sec.encrypt(&plain)?;
            buf.extend_from_slice(&t);
            0
        } else {
            payload.map_or(0, |p| p.len())
        };
        finish_frame(&mut buf, frame, extra)?;
        Ok(buf)
    }

    async fn write_frame(&self, buf: BytesMut, payload: Option<Bytes>) -> RxResult<()> {
        let mut w = self.inner.writer.lock().await;
        let Some(wr) = w.as_mut() else {
            return Err(self
                .dead()
                .unwrap_or_else(|| closed("connection shut down")));
        };
        let res = match payload {
            Some(p) => {
                let mut chain = buf.freeze().chain(p);
                wr.write_all_buf(&mut chain).await
            }
            None => {
                let mut b = buf.freeze();
                wr.write_all_buf(&mut b).await
            }
        };
        if let Err(e) = res {
            let err = io_error(&format!("send to {}", self.inner.peer), &e);
            *w = None;
            drop(w);
            self.inner.die(err.clone());
            return Err(err);
        }
        Ok(())
    }

    /// Closes the connection: the socket is shut down and every waiter fails.
    pub async fn shutdown(&self) {
        let mut w = self.inner.writer.lock().await;
        if let Some(mut wr) = w.take() {
            let _ = wr.shutdown().await;
        }
        drop(w);
        self.inner.die(closed("connection shut down"));
    }
}

fn internal(what: &str) -> RxError {
    RxError::status(NtStatus::STATUS_UNSUCCESSFUL, what.to_string())
}

fn closed(what: &str) -> RxError {
    RxError::status(NtStatus::STATUS_CONNECTION_DISCONNECTED, what.to_string())
}

impl Inner {
    /// Marks the connection dead and fails every waiter with `err` at once.
    fn die(&self, err: RxError) {
        let waiters = {
            let mut st = self.state.lock();
            if st.dead.is_none() {
                st.dead = Some(err.clone());
            }
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            let _ = w.tx.send(Err(err.clone()));
        }
        self.credit_notify.notify_waiters();
    }

    fn handle_frame(&self, frame: Bytes) -> RxResult<()> {
        match classify(&frame)? {
            FrameKind::Smb2 => self.handle_plain(frame, false),
            FrameKind::Transform => {
                let (th, _) = TransformHeader::decode(&frame)?;
                let sec = self.state.lock().sessions.get(&th.session_id).cloned();
                let Some(sec) = sec else {
                    return Err(RxError::status(
                        NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                        format!("encrypted message for unknown session {:#x}", th.session_id),
                    ));
                };
                let plain = sec.decrypt(&frame)?;
                self.handle_plain(plain, true)
            }
            FrameKind::Compressed => Err(crate::proto::ProtoError::CompressionUnsupported.into()),
            FrameKind::Smb1 => Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                "SMB1 message received on an SMB2 connection",
            )),
        }
    }

    fn handle_plain(&self, frame: Bytes, encrypted: bool) -> RxResult<()> {
        let msgs = split_compound(&frame)?;
        for m in msgs {
            let h = &m.header;
            if !h.flags.contains(HeaderFlags::SERVER_TO_REDIR) {
                return Err(RxError::status(
                    NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                    "request received from the server",
                ));
            }
            if h.message_id == UNSOLICITED_MESSAGE_ID {
                if h.command == Command::OPLOCK_BREAK {
                    let _ = self.unsolicited_tx.send(m);
                }
                continue;
            }
            let interim = h.is_pending();
            let mut st = self.state.lock();
            st.credits.granted(h.credits, !interim);
            if interim {
                if let Some(w) = st.waiters.get_mut(&h.message_id) {
                    w.async_id = h.async_id;
                }
                continue;
            }
            let Some(w) = st.waiters.remove(&h.message_id) else {
                // Not ours (e.g. its Pending was dropped): nothing waits for it.
                continue;
            };
            let sec = st.sessions.get(&h.session_id).cloned();
            drop(st);
            let res = Ok(Delivered(m, if encrypted { None } else { sec }));
            let _ = w.tx.send(res);
        }
        self.credit_notify.notify_waiters();
        Ok(())
    }
}

/// Checks a response's signature with the session's keys.
fn verify(sec: &dyn SessionSecurity, m: &Message) -> RxResult<()> {
    let signed = m.header.flags.contains(HeaderFlags::SIGNED);
    if !signed {
        if sec.signing_required() && m.header.status != NtStatus::STATUS_PENDING {
            return Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!(
                    "unsigned {:?} response on a signed session",
                    m.header.command
                ),
            ));
        }
        return Ok(());
    }
    // Only the header is copied (to zero its Signature); the body is signed in place.
    let Some(head) = m.bytes.get(..crate::proto::HEADER_SIZE) else {
        return Err(RxError::status(
            NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
            "response shorter than an SMB2 header",
        ));
    };
    let mut head = head.to_vec();
    if let Some(s) = head.get_mut(signature_range(0)) {
        s.fill(0);
    }
    let body = m.bytes.get(crate::proto::HEADER_SIZE..).unwrap_or(&[]);
    let expected = sec.sign(&[&head, body])?;
    if expected != m.header.signature {
        return Err(RxError::status(
            NtStatus::STATUS_INVALID_SIGNATURE,
            format!("bad signature on {:?} response", m.header.command),
        ));
    }
    Ok(())
}

async fn reader_loop(inner: Arc<Inner>, mut rd: OwnedReadHalf, max_frame: usize) {
    let mut dec = FrameDecoder::new(max_frame);
    let err = loop {
        match dec.next_frame() {
            Ok(Some(frame)) => {
                if let Err(e) = inner.handle_frame(frame) {
                    break e;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break e.into(),
        }
        let b = dec.buffer_mut();
        if b.capacity() - b.len() < 4096 {
            b.reserve(64 * 1024);
        }
        match rd.read_buf(b).await {
            Ok(0) => break closed(&format!("{} closed the connection", inner.peer)),
            Ok(_) => {}
            Err(e) => break io_error(&format!("receive from {}", inner.peer), &e),
        }
    };
    inner.die(err);
}
