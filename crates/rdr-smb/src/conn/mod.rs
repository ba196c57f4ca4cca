//! The SMB2/3 connection engine over tokio: framing, MessageId routing, credits, CANCEL,
//! ECHO and the signing/encryption hooks ([`SessionSecurity`]) the session layer plugs in.

#![warn(missing_docs)]

mod connection;
pub mod credits;
pub mod security;

pub use connection::{
    ConnConfig, Connection, DEFAULT_DEAD_TIMEOUT, DEFAULT_ECHO_INTERVAL, Negotiated, Pending,
    SendOptions, UNSOLICITED_MESSAGE_ID,
};
pub use credits::CreditWindow;
pub use security::SessionSecurity;
