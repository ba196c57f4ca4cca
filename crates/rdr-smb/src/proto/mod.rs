//! The SMB 2/3 protocol codec: typed messages from [MS-SMB2], encoded into `BytesMut` and
//! decoded from received `Bytes`, with no I/O at all (sans-I/O). The connection engine above
//! assigns MessageIds and credits, signs and encrypts, and routes responses.
//!
//! Conventions:
//! - A body's `encode_body` appends to a buffer whose last 64 bytes are its header (use
//!   [`encode_message`] or [`CompoundBuilder`]); offsets are counted from the header.
//! - `decode_body` takes one whole message (header first) as `Bytes`; payloads (READ data,
//!   security buffers, query outputs) are zero-copy slices of it.
//! - Decoders never panic and check every offset and length against the buffer; errors are
//!   [`ProtoError`], which converts into `RxError` (STATUS_INVALID_NETWORK_RESPONSE).

#![warn(missing_docs)]

mod any;
mod compound;
mod consts;
mod create;
mod dir;
mod error;
mod error_resp;
mod file;
mod frame;
mod header;
mod info;
mod ioctl;
mod negotiate;
mod oplock;
mod session;
mod time;
mod transform;
mod utf16;
mod wire;

pub use any::{AnyResponse, decode_response, exercise_decoders};
pub use compound::{CompoundBuilder, split_compound};
pub use consts::*;
pub use create::*;
pub use dir::*;
pub use error::{ProtoError, ProtoResult};
pub use error_resp::{
    ErrorContext, ErrorResponse, IO_REPARSE_TAG_SYMLINK, SYMLINK_ERROR_TAG, SymlinkError,
};
pub use file::*;
pub use frame::*;
pub use header::{
    CREDIT_CHARGE_OFFSET, CREDITS_OFFSET, FLAGS_OFFSET, FileId, HEADER_SIZE, Header,
    MESSAGE_ID_OFFSET, Message, NEXT_COMMAND_OFFSET, SIGNATURE_OFFSET, SMB2_MAGIC, SmbMessage,
    credit_charge_for, encode_message, patch_request_header, set_signed_flag, signature_range,
};
pub use info::*;
pub use ioctl::*;
pub use negotiate::*;
pub use oplock::*;
pub use session::*;
pub use time::FileTime;
pub use transform::*;
pub use utf16::{decode_utf16le, encode_utf16le, put_utf16le, utf16le_len};
