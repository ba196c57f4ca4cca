//! The connection engine: one TCP connection (TCP_NODELAY), one reader task that routes
//! responses to their waiters by MessageId, credit accounting (multi-credit requests and
//! credits granted by interim responses), async responses, CANCEL, ECHO, unsolicited
//! oplock/lease breaks, and failing every waiter at once when the connection dies — including
//! when the server goes silent: a keepalive task sends ECHO after an idle interval and declares
//! the connection dead when nothing at all arrives for `echo_interval + dead_timeout` while
//! something is expected.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use rdr_core::{NtStatus, RxError, RxResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

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
    /// After this long without receiving anything, an SMB2 ECHO is sent (once NEGOTIATE has
    /// succeeded). `Duration::ZERO` turns the keepalive and the dead-peer detection off.
    /// Default [`DEFAULT_ECHO_INTERVAL`].
    pub echo_interval: Duration,
    /// How much longer the server may stay silent before the connection is declared dead:
    /// when nothing at all (no frame, not even an interim response) was received for
    /// `echo_interval + dead_timeout` while a request or an ECHO is outstanding, every waiter
    /// fails with STATUS_CONNECTION_DISCONNECTED. Default [`DEFAULT_DEAD_TIMEOUT`].
    pub dead_timeout: Duration,
}

/// Default idle time before an ECHO: 30 s. Half of cifs.ko's `echo_interval` (60 s): a FUSE
/// process blocked on a vanished server should learn it within a minute, and one 68-byte
/// ECHO per idle half-minute costs nothing. Requests that legitimately pend (CHANGE_NOTIFY,
/// blocking LOCK) are unaffected: the server answers the ECHO meanwhile.
pub const DEFAULT_ECHO_INTERVAL: Duration = Duration::from_secs(30);

/// Default grace after the interval: 30 s, so a connection is declared dead after 60 s of total
/// silence while something is expected (cifs.ko waits about 2 × echo_interval = 120 s). Long
/// enough for a loaded or failing-over server to answer an ECHO, short enough that callers
/// do not hang for minutes.
pub const DEFAULT_DEAD_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_frame: MAX_FRAME_LEN,
            credit_target: 512,
            connect_timeout: Duration::from_secs(10),
            echo_interval: DEFAULT_ECHO_INTERVAL,
            dead_timeout: DEFAULT_DEAD_TIMEOUT,
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
    /// CANCELs written (observability: tests prove a cancel reached the wire).
    cancels_sent: u64,
    /// Final (non-interim) responses whose status was STATUS_CANCELLED.
    cancelled_finals: u64,
    /// ECHOs written (observability: tests prove the keepalive really reached the wire).
    echoes_sent: u64,
    /// A NEGOTIATE succeeded: the server accepts ECHO from now on.
    negotiated: bool,
}

struct Inner {
    state: Mutex<State>,
    credit_notify: Notify,
    /// Woken when an interim response gives a request its AsyncId (see [`Connection::cancel`]).
    interim_notify: Notify,
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    unsolicited_tx: mpsc::UnboundedSender<Message>,
    unsolicited_rx: Mutex<Option<mpsc::UnboundedReceiver<Message>>>,
    peer: String,
    /// Turns true when the connection dies: wakes the reader, a blocked writer and the
    /// keepalive task.
    dead_tx: watch::Sender<bool>,
    /// The time `last_rx` counts from.
    epoch: Instant,
    /// When bytes were last received, in nanoseconds since `epoch`.
    last_rx: AtomicU64,
}

/// The connection's tasks (reader and keepalive): aborted when the last [`Connection`] clone
/// is dropped, so none outlives it.
struct Tasks {
    reader: JoinHandle<()>,
    keepalive: Mutex<Option<JoinHandle<()>>>,
}
impl Drop for Tasks {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(k) = self.keepalive.lock().take() {
            k.abort();
        }
    }
}

/// A [`Connection`] that does not keep it alive (held by the keepalive task).
struct WeakConnection {
    inner: Weak<Inner>,
    tasks: Weak<Tasks>,
}

impl WeakConnection {
    fn upgrade(&self) -> Option<Connection> {
        Some(Connection {
            inner: self.inner.upgrade()?,
            _tasks: self.tasks.upgrade()?,
        })
    }
}

/// One SMB2/3 connection to a server. Cheap to clone; the reader task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
    _tasks: Arc<Tasks>,
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
        // TCP keepalive too (cheap): it catches a dead peer when the ECHO keepalive is off.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10)),
        );
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
                cancels_sent: 0,
                cancelled_finals: 0,
                echoes_sent: 0,
                negotiated: false,
            }),
            credit_notify: Notify::new(),
            interim_notify: Notify::new(),
            writer: tokio::sync::Mutex::new(Some(wr)),
            unsolicited_tx: utx,
            unsolicited_rx: Mutex::new(Some(urx)),
            peer,
            dead_tx: watch::Sender::new(false),
            epoch: Instant::now(),
            last_rx: AtomicU64::new(0),
        });
        let reader = tokio::spawn(reader_loop(inner.clone(), rd, config.max_frame));
        let conn = Connection {
            inner,
            _tasks: Arc::new(Tasks {
                reader,
                keepalive: Mutex::new(None),
            }),
        };
        if !config.echo_interval.is_zero() {
            let weak = WeakConnection {
                inner: Arc::downgrade(&conn.inner),
                tasks: Arc::downgrade(&conn._tasks),
            };
            let task = tokio::spawn(keepalive_loop(
                weak,
                config.echo_interval,
                config.dead_timeout,
            ));
            *conn._tasks.keepalive.lock() = Some(task);
        }
        Ok(conn)
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

    /// Whether the connection died (cheap: no lock of the connection's state, no copy of
    /// the error); every handle operation asks.
    pub fn is_dead(&self) -> bool {
        *self.inner.dead_tx.borrow()
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
        let rsp = self.submit_echo().await?.wait().await?;
        if rsp.header.status != NtStatus::STATUS_SUCCESS {
            return Err(RxError::status(rsp.header.status, "ECHO"));
        }
        rsp.body::<crate::proto::EchoResponse>()?;
        Ok(())
    }

    /// Writes one ECHO (SessionId 0, unsigned) and counts it.
    async fn submit_echo(&self) -> RxResult<Pending> {
        let p = self
            .submit(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await?;
        self.inner.state.lock().echoes_sent += 1;
        Ok(p)
    }

    /// Resolves when the connection dies (or is dropped); holds no reference to it.
    pub fn died(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.dead_tx.subscribe();
        async move {
            let _ = rx.wait_for(|d| *d).await;
        }
    }

    /// How many SMB2 ECHOs this connection has written, by the keepalive or [`Connection::echo`]
    /// (observability: proves the keepalive really reached the wire).
    pub fn echoes_sent(&self) -> u64 {
        self.inner.state.lock().echoes_sent
    }

    /// Sends CANCEL for the request sent with `message_id` (its AsyncId once an interim
    /// response gave one). CANCEL takes no credit and has no response: the cancelled
    /// request completes, usually with STATUS_CANCELLED.
    pub async fn cancel(&self, message_id: u64, opts: &SendOptions) -> RxResult<()> {
        let Some((async_id, session_id, tree_id)) = self.waiter_ids(message_id)? else {
            return Ok(()); // already answered
        };
        self.send_cancel(message_id, async_id, session_id, tree_id, opts)
            .await?;
        if async_id.is_none() {
            // A CANCEL by MessageId can reach the server before the request is registered
            // there as cancellable, and then matches nothing: the request would pend forever.
            // Once the interim response names its AsyncId, cancel again in the async form (a
            // CANCEL that matches nothing is harmless).
            let this = self.clone();
            let opts = opts.clone();
            tokio::spawn(async move { this.cancel_when_async(message_id, opts).await });
        }
        Ok(())
    }

    /// The AsyncId, SessionId and TreeId of a request still waiting for its final response.
    fn waiter_ids(&self, message_id: u64) -> RxResult<Option<(Option<u64>, u64, u32)>> {
        let st = self.inner.state.lock();
        if let Some(e) = &st.dead {
            return Err(e.clone());
        }
        Ok(st
            .waiters
            .get(&message_id)
            .map(|w| (w.async_id, w.session_id, w.tree_id)))
    }

    /// Writes one SMB2 CANCEL (async form when `async_id` is known).
    async fn send_cancel(
        &self,
        message_id: u64,
        async_id: Option<u64>,
        session_id: u64,
        tree_id: u32,
        opts: &SendOptions,
    ) -> RxResult<()> {
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
        self.write_frame(buf, None).await?;
        self.inner.state.lock().cancels_sent += 1;
        Ok(())
    }

    /// Waits (at most 5 s) for the request's interim response, then sends the async CANCEL.
    async fn cancel_when_async(&self, message_id: u64, opts: SendOptions) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let (async_id, session_id, tree_id) = loop {
            let woken = self.inner.interim_notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.waiter_ids(message_id) {
                Ok(Some((Some(a), s, t))) => break (a, s, t),
                Ok(Some(_)) => {}
                _ => return, // answered, or the connection is gone
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return;
            }
        };
        let _ = self
            .send_cancel(message_id, Some(async_id), session_id, tree_id, &opts)
            .await;
    }

    /// How many SMB2 CANCELs this connection has written (observability for tests and
    /// diagnostics: proves a cancel really went out).
    pub fn cancels_sent(&self) -> u64 {
        self.inner.state.lock().cancels_sent
    }

    /// How many final responses this connection received with STATUS_CANCELLED (observability:
    /// proves the server itself completed a cancelled request).
    pub fn cancelled_responses(&self) -> u64 {
        self.inner.state.lock().cancelled_finals
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
            // Died since the credits were taken: `die` already failed every waiter, and a
            // waiter added now would never hear anything.
            if let Some(e) = st.dead.clone() {
                for _ in 0..ids.len() {
                    st.credits.abandoned();
                }
                return Err(e);
            }
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
        if let Some(e) = self.dead() {
            *w = None;
            return Err(e);
        }
        let Some(wr) = w.as_mut() else {
            return Err(self
                .dead()
                .unwrap_or_else(|| closed("connection shut down")));
        };
        // A write to a silent peer can block once the socket buffers are full: it gives up
        // when the connection is declared dead (the stream is dropped, so a half-written
        // frame does no harm).
        let mut dead_rx = self.inner.dead_tx.subscribe();
        let died = async move {
            let _ = dead_rx.wait_for(|d| *d).await;
        };
        let write = async {
            match payload {
                Some(p) => {
                    let mut chain = buf.freeze().chain(p);
                    wr.write_all_buf(&mut chain).await
                }
                None => {
                    let mut b = buf.freeze();
                    wr.write_all_buf(&mut b).await
                }
            }
        };
        let res = tokio::select! {
            biased;
            () = died => {
                *w = None;
                return Err(self.dead().unwrap_or_else(|| closed("connection shut down")));
            }
            r = write => r,
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
            // Under the lock: `is_dead` turns true no later than `dead`.
            self.dead_tx.send_replace(true);
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            let _ = w.tx.send(Err(err.clone()));
        }
        self.credit_notify.notify_waiters();
        // The reader and a blocked writer were woken above; dropping the write half (here, or
        // in the writer that holds it) sends FIN, and the reader drops the rest of the socket.
        if let Ok(mut w) = self.writer.try_lock() {
            w.take();
        }
    }

    /// Notes that bytes arrived (the keepalive's "server is alive" clock).
    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_rx.store(nanos, Ordering::Relaxed);
    }

    /// When bytes last arrived (the connection's start if none did yet).
    fn last_rx(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_rx.load(Ordering::Relaxed))
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
            if h.command == Command::NEGOTIATE && h.status == NtStatus::STATUS_SUCCESS {
                st.negotiated = true;
            }
            if interim {
                if let Some(w) = st.waiters.get_mut(&h.message_id) {
                    w.async_id = h.async_id;
                }
                drop(st);
                self.interim_notify.notify_waiters();
                continue;
            }
            if h.status == NtStatus::STATUS_CANCELLED {
                st.cancelled_finals += 1;
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
    let mut dead_rx = inner.dead_tx.subscribe();
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
        // read_buf is cancel-safe: giving up when the connection is declared dead loses nothing.
        let read = tokio::select! {
            r = rd.read_buf(b) => r,
            () = async { let _ = dead_rx.wait_for(|d| *d).await; } => return,
        };
        match read {
            Ok(0) => break closed(&format!("{} closed the connection", inner.peer)),
            Ok(_) => inner.touch(),
            Err(e) => break io_error(&format!("receive from {}", inner.peer), &e),
        }
    };
    inner.die(err);
}

/// An ECHO on its way out (waiting for a credit or the socket).
type EchoSend = Pin<Box<dyn Future<Output = RxResult<Pending>> + Send>>;

/// Whether the server owes the connection something (a response or the ECHO's answer).
fn expecting(outstanding: bool, sending: &Option<EchoSend>, echo: &Option<Pending>) -> bool {
    outstanding || sending.is_some() || echo.is_some()
}

/// The keepalive: after `interval` without receiving anything, sends an ECHO; when nothing at
/// all was received for `interval + timeout` while a request or the ECHO is outstanding,
/// declares the connection dead (every waiter fails at once). Requests that legitimately pend
/// do not trip it: the server answers the ECHO meanwhile. Holds the connection weakly; ends
/// when it dies or is dropped.
async fn keepalive_loop(weak: WeakConnection, interval: Duration, timeout: Duration) {
    let Some(mut dead_rx) = weak.inner.upgrade().map(|i| i.dead_tx.subscribe()) else {
        return;
    };
    let limit = interval.saturating_add(timeout);
    let mut sending: Option<EchoSend> = None;
    let mut echo: Option<Pending> = None;
    // After an ECHO could not be sent (e.g. no credit), the next try waits an interval.
    let mut retry_at = Instant::now();
    loop {
        let next = {
            let Some(inner) = weak.inner.upgrade() else {
                return;
            };
            let last = inner.last_rx();
            let silent = Instant::now().saturating_duration_since(last);
            let (dead, outstanding, negotiated) = {
                let st = inner.state.lock();
                (st.dead.is_some(), !st.waiters.is_empty(), st.negotiated)
            };
            if dead {
                return;
            }
            if expecting(outstanding, &sending, &echo) && silent >= limit {
                inner.die(RxError::status(
                    NtStatus::STATUS_CONNECTION_DISCONNECTED,
                    format!(
                        "{}: nothing received for {:.1} s while responses were due \
                         (ECHO after {:?} idle, dead after {:?} more): connection declared dead",
                        inner.peer,
                        silent.as_secs_f64(),
                        interval,
                        timeout
                    ),
                ));
                return;
            }
            let now = Instant::now();
            if negotiated
                && sending.is_none()
                && echo.is_none()
                && silent >= interval
                && now >= retry_at
                && let Some(conn) = weak.upgrade()
            {
                sending = Some(Box::pin(async move { conn.submit_echo().await }));
            }
            // Huge settings must not overflow the clock: wake up a day later at most.
            let at = |base: Instant, d: Duration| {
                base.checked_add(d)
                    .unwrap_or_else(|| now + Duration::from_secs(86_400))
            };
            if silent < interval {
                at(last, interval)
            } else if expecting(outstanding, &sending, &echo) {
                at(last, limit)
            } else {
                // No ECHO could go out (not negotiated yet, or sending failed): look again
                // an interval later.
                at(now, interval)
            }
        };
        let send_done = async {
            match sending.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let echo_done = async {
            match echo.as_mut() {
                Some(p) => {
                    let _ = (&mut p.rx).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            r = send_done => {
                sending = None;
                echo = r.ok();
                if echo.is_none() {
                    let now = Instant::now();
                    retry_at = now.checked_add(interval).unwrap_or(now);
                }
            }
            () = echo_done => echo = None,
            r = dead_rx.changed() => {
                if r.is_err() {
                    return;
                }
            }
        }
    }
}
