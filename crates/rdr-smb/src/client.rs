//! `SmbClient`: one TCP connection to a server after NEGOTIATE — RDBSS's SrvCall for SMB. Every
//! session (any user) on this server rides on it; it also owns the lease table and the task that
//! receives oplock and lease breaks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdr_core::{NtStatus, RxError, RxResult};
use tokio::sync::mpsc;

use crate::conn::{ConnConfig, Connection};
use crate::lease::{BreakEvent, LeaseTable};
use crate::negotiate::{NegotiateOptions, Negotiated, negotiate};
use crate::proto::{Dialect, Message};

/// How the client connects and moves data. `Default` gives sensible values.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Dialects offered (default: all of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1).
    pub dialects: Vec<Dialect>,
    /// Sign every request of an authenticated session (default true).
    pub require_signing: bool,
    /// Largest READ/WRITE sent in one request (capped by the server's max read/write).
    pub io_chunk: u32,
    /// READ/WRITE requests one call keeps in flight.
    pub io_depth: usize,
    /// Time allowed for the TCP connect.
    pub connect_timeout: Duration,
    /// Credits to ask the server for.
    pub credit_target: u16,
    /// Request leases (2.1+) or batch oplocks (2.0.2) on file opens.
    pub request_leases: bool,
    /// Ask for durable handles (v2, SMB 3.x, with a lease) so that opens survive a dropped
    /// connection and are reclaimed after the reconnect; granted where the server allows.
    /// An open that creates its file asks only once it has lived
    /// [`crate::open::DURABLE_AFTER`] (`Open::make_durable`).
    pub durable_handles: bool,
    /// How long a break waits for its consumer before acknowledging anyway (below the
    /// server's 35 s timeout).
    pub break_budget: Duration,
    /// The workstation name sent in NTLM.
    pub workstation: String,
    /// The client GUID (random by default; leases are keyed by it on the server).
    pub client_guid: [u8; 16],
    /// Idle time after which an ECHO checks the server is alive (default 30 s, see
    /// [`crate::conn::DEFAULT_ECHO_INTERVAL`]); zero turns keepalive and dead-peer detection off.
    pub echo_interval: Duration,
    /// Further silence after which the connection is declared dead and every waiter fails
    /// (default 30 s, see [`crate::conn::DEFAULT_DEAD_TIMEOUT`]).
    pub dead_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let mut guid = [0u8; 16];
        let _ = getrandom::fill(&mut guid);
        ClientConfig {
            dialects: Dialect::ALL.to_vec(),
            require_signing: true,
            io_chunk: 1024 * 1024,
            io_depth: 16,
            connect_timeout: Duration::from_secs(10),
            credit_target: 1024,
            request_leases: true,
            durable_handles: true,
            break_budget: Duration::from_secs(30),
            workstation: "RDR".to_string(),
            client_guid: guid,
            echo_interval: crate::conn::DEFAULT_ECHO_INTERVAL,
            dead_timeout: crate::conn::DEFAULT_DEAD_TIMEOUT,
        }
    }
}

/// One negotiated SMB connection.
pub struct SmbClient {
    pub(crate) conn: Connection,
    pub(crate) neg: Negotiated,
    pub(crate) server: String,
    pub(crate) config: ClientConfig,
    pub(crate) leases: Arc<LeaseTable>,
}

impl std::fmt::Debug for SmbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbClient")
            .field("server", &self.server)
            .field("dialect", &self.neg.dialect)
            .finish()
    }
}

impl SmbClient {
    /// Connects to `server:port` (a host name or address) and negotiates.
    pub async fn connect(server: &str, port: u16, config: ClientConfig) -> RxResult<Arc<Self>> {
        let addr = resolve(server, port).await?;
        let conn = Connection::connect(
            addr,
            ConnConfig {
                credit_target: config.credit_target,
                connect_timeout: config.connect_timeout,
                echo_interval: config.echo_interval,
                dead_timeout: config.dead_timeout,
                ..ConnConfig::default()
            },
        )
        .await
        .map_err(|e| name_error(e, &format!("\\\\{server} (port {port})")))?;
        let opts = NegotiateOptions {
            dialects: config.dialects.clone(),
            require_signing: config.require_signing,
            client_guid: config.client_guid,
        };
        let neg = match negotiate(&conn, &opts, server).await {
            Ok(n) => n,
            Err(e) => {
                conn.shutdown().await;
                return Err(e);
            }
        };
        let leases = LeaseTable::new(config.break_budget);
        if let Some(rx) = conn.take_unsolicited() {
            tokio::spawn(crate::lease::dispatch(leases.clone(), rx));
        }
        // A dead connection takes every lease and oplock with it: tell the subscriber, as
        // breaks to none, so that nothing cached under them is trusted any longer.
        let died = conn.died();
        let table = Arc::downgrade(&leases);
        tokio::spawn(async move {
            died.await;
            if let Some(t) = table.upgrade() {
                t.connection_lost().await;
            }
        });
        Ok(Arc::new(SmbClient {
            conn,
            neg,
            server: server.to_string(),
            config,
            leases,
        }))
    }

    /// The negotiated parameters.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// The negotiated dialect.
    pub fn dialect(&self) -> Dialect {
        self.neg.dialect
    }

    /// The server name as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The connection engine (for counters and tests).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// True when the connection has died.
    pub fn is_dead(&self) -> bool {
        self.conn.is_dead()
    }

    /// Receives every oplock and lease break from now on (one subscriber; a new call replaces
    /// the previous one). A break waits for its event to be dropped or released (up to the
    /// break budget) before it is acknowledged, so a consumer can flush first.
    pub fn subscribe_breaks(&self) -> mpsc::UnboundedReceiver<BreakEvent> {
        self.leases.subscribe()
    }

    /// Lease keys in use (files with open handles holding or requesting a lease).
    pub fn leases_in_use(&self) -> usize {
        self.leases.lease_count()
    }

    /// Closes the connection at once; every pending request fails.
    pub async fn shutdown(&self) {
        self.conn.shutdown().await;
    }

    pub(crate) fn io_chunk_read(&self) -> u32 {
        self.config.io_chunk.min(self.neg.max_read).max(4096)
    }

    pub(crate) fn io_chunk_write(&self) -> u32 {
        self.config.io_chunk.min(self.neg.max_write).max(4096)
    }
}

async fn resolve(server: &str, port: u16) -> RxResult<SocketAddr> {
    if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((server, port)).await.map_err(|e| {
        RxError::status(
            NtStatus::STATUS_BAD_NETWORK_PATH,
            format!("\\\\{server}: cannot resolve the host name: {e}"),
        )
    })?;
    addrs.next().ok_or_else(|| {
        RxError::status(
            NtStatus::STATUS_BAD_NETWORK_PATH,
            format!("\\\\{server}: the host name has no address"),
        )
    })
}

/// Prefixes an error's message with the thing it concerned.
pub(crate) fn name_error(e: RxError, what: &str) -> RxError {
    match e {
        RxError::Status { status, what: w } => RxError::status(status, format!("{what}: {w}")),
        other => other,
    }
}

/// `Err` with the response's status when `msg` is an error response.
pub(crate) fn check(msg: &Message, what: impl FnOnce() -> String) -> RxResult<()> {
    if msg.is_error_response() {
        return Err(RxError::status(msg.header.status, what()));
    }
    Ok(())
}
