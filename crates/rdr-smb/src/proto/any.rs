//! Decoding any response by its header's command: used for logging, by in-memory test peers
//! and by the fuzz target.

use bytes::Bytes;

use super::compound::split_compound;
use super::consts::Command;
use super::create::{
    CreateResponse, DurableV2, Lease, MaximalAccessResponse, OnDiskId, decode_create_contexts,
};
use super::dir::{
    ChangeNotifyResponse, QueryDirectoryResponse, parse_directory_information,
    parse_id_both_directory_information, parse_notify_information,
};
use super::error::{ProtoError, ProtoResult};
use super::error_resp::ErrorResponse;
use super::file::{CloseResponse, FlushResponse, LockResponse, ReadResponse, WriteResponse};
use super::frame::{FrameDecoder, FrameKind, classify};
use super::header::{Message, SmbMessage};
use super::info::{
    FileAllInformation, FileBasicInformation, FileFsFullSizeInformation, FileFsSizeInformation,
    FileNetworkOpenInformation, FileStandardInformation, QueryInfoResponse, SetInfoResponse,
};
use super::ioctl::{IoctlResponse, ValidateNegotiateInfoResponse};
use super::negotiate::NegotiateResponse;
use super::oplock::OplockBreakMessage;
use super::session::{
    EchoResponse, LogoffResponse, SessionSetupResponse, TreeConnectResponse, TreeDisconnectResponse,
};
use super::transform::TransformHeader;

/// A decoded response of any command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AnyResponse {
    /// An ERROR body (the header's status says which error), or an interim STATUS_PENDING.
    Error(ErrorResponse),
    Negotiate(NegotiateResponse),
    SessionSetup(SessionSetupResponse),
    Logoff(LogoffResponse),
    TreeConnect(TreeConnectResponse),
    TreeDisconnect(TreeDisconnectResponse),
    Create(CreateResponse),
    Close(CloseResponse),
    Flush(FlushResponse),
    Read(ReadResponse),
    Write(WriteResponse),
    Lock(LockResponse),
    Ioctl(IoctlResponse),
    Echo(EchoResponse),
    QueryDirectory(QueryDirectoryResponse),
    ChangeNotify(ChangeNotifyResponse),
    QueryInfo(QueryInfoResponse),
    SetInfo(SetInfoResponse),
    OplockBreak(OplockBreakMessage),
}

/// Decodes `msg` as the response its header names (an ERROR body when the status says so).
pub fn decode_response(msg: &Message) -> ProtoResult<AnyResponse> {
    if msg.is_error_response() {
        return Ok(AnyResponse::Error(ErrorResponse::decode(&msg.bytes)?));
    }
    let b = &msg.bytes;
    Ok(match msg.header.command {
        Command::NEGOTIATE => AnyResponse::Negotiate(NegotiateResponse::decode_body(b)?),
        Command::SESSION_SETUP => AnyResponse::SessionSetup(SessionSetupResponse::decode_body(b)?),
        Command::LOGOFF => AnyResponse::Logoff(LogoffResponse::decode_body(b)?),
        Command::TREE_CONNECT => AnyResponse::TreeConnect(TreeConnectResponse::decode_body(b)?),
        Command::TREE_DISCONNECT => {
            AnyResponse::TreeDisconnect(TreeDisconnectResponse::decode_body(b)?)
        }
        Command::CREATE => AnyResponse::Create(CreateResponse::decode_body(b)?),
        Command::CLOSE => AnyResponse::Close(CloseResponse::decode_body(b)?),
        Command::FLUSH => AnyResponse::Flush(FlushResponse::decode_body(b)?),
        Command::READ => AnyResponse::Read(ReadResponse::decode_body(b)?),
        Command::WRITE => AnyResponse::Write(WriteResponse::decode_body(b)?),
        Command::LOCK => AnyResponse::Lock(LockResponse::decode_body(b)?),
        Command::IOCTL => AnyResponse::Ioctl(IoctlResponse::decode_body(b)?),
        Command::ECHO => AnyResponse::Echo(EchoResponse::decode_body(b)?),
        Command::QUERY_DIRECTORY => {
            AnyResponse::QueryDirectory(QueryDirectoryResponse::decode_body(b)?)
        }
        Command::CHANGE_NOTIFY => AnyResponse::ChangeNotify(ChangeNotifyResponse::decode_body(b)?),
        Command::QUERY_INFO => AnyResponse::QueryInfo(QueryInfoResponse::decode_body(b)?),
        Command::SET_INFO => AnyResponse::SetInfo(SetInfoResponse::decode_body(b)?),
        Command::OPLOCK_BREAK => AnyResponse::OplockBreak(OplockBreakMessage::decode(b)?),
        other => {
            return Err(ProtoError::BadValue {
                msg: "response",
                field: "Command",
                value: other.0 as u64,
                why: "not a command with a response",
            });
        }
    })
}

/// Runs every decoder over arbitrary bytes: the frame decoder, compound splitting, the
/// response decoders (by header and each one directly), the transform header and the
/// payload parsers. It returns how many decodes succeeded; its purpose is that it never
/// panics, whatever `data` holds (checked by the fuzz target and by a test over a mutated
/// corpus).
#[doc(hidden)]
pub fn exercise_decoders(data: &[u8]) -> usize {
    let mut ok = 0usize;
    let bytes = Bytes::copy_from_slice(data);

    // Framing: feed the data in uneven chunks.
    let mut fd = FrameDecoder::new(1 << 20);
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 7;
    let mut frames = Vec::new();
    for chunk in data.chunks(step) {
        fd.push(chunk);
        loop {
            match fd.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => break,
            }
        }
    }
    frames.push(bytes.clone());

    for frame in &frames {
        if let Ok(FrameKind::Transform) = classify(frame) {
            ok += TransformHeader::decode(frame).is_ok() as usize;
        }
        if let Ok(msgs) = split_compound(frame) {
            for m in &msgs {
                ok += decode_response(m).is_ok() as usize;
            }
        }
        ok += run_all(frame);
    }
    ok
}

fn run_all(b: &Bytes) -> usize {
    let mut ok = 0usize;
    macro_rules! t {
        ($e:expr) => {
            ok += $e.is_ok() as usize;
        };
    }
    t!(ErrorResponse::decode(b).and_then(|e| e.symlink()));
    t!(NegotiateResponse::decode_body(b));
    t!(SessionSetupResponse::decode_body(b));
    t!(LogoffResponse::decode_body(b));
    t!(TreeConnectResponse::decode_body(b));
    t!(TreeDisconnectResponse::decode_body(b));
    t!(CreateResponse::decode_body(b));
    t!(CloseResponse::decode_body(b));
    t!(FlushResponse::decode_body(b));
    t!(ReadResponse::decode_body(b));
    t!(WriteResponse::decode_body(b));
    t!(LockResponse::decode_body(b));
    t!(IoctlResponse::decode_body(b));
    t!(EchoResponse::decode_body(b));
    t!(QueryDirectoryResponse::decode_body(b));
    t!(ChangeNotifyResponse::decode_body(b));
    t!(QueryInfoResponse::decode_body(b));
    t!(SetInfoResponse::decode_body(b));
    t!(OplockBreakMessage::decode(b));
    t!(Message::parse(b.clone()));
    // Payload parsers, on the raw bytes and on the body part.
    let body = b.slice(b.len().min(64)..);
    for p in [b, &body] {
        t!(decode_create_contexts(p));
        t!(Lease::parse(p));
        t!(DurableV2::parse_response(p));
        t!(MaximalAccessResponse::parse(p));
        t!(OnDiskId::parse(p));
        t!(parse_directory_information(p));
        t!(parse_id_both_directory_information(p));
        t!(parse_notify_information(p));
        t!(FileBasicInformation::parse(p));
        t!(FileStandardInformation::parse(p));
        t!(FileAllInformation::parse(p));
        t!(FileNetworkOpenInformation::parse(p));
        t!(FileFsFullSizeInformation::parse(p));
        t!(FileFsSizeInformation::parse(p));
        t!(ValidateNegotiateInfoResponse::parse(p));
        t!(super::ioctl::parse_resume_key(p));
        t!(super::ioctl::CopyChunkCopy::parse(p));
        t!(super::ioctl::CopyChunkResponse::parse(p));
        t!(super::info::FileRenameInformation::parse(p));
        t!(super::info::FileFsAttributeInformation::parse(p));
        t!(super::info::FileFsVolumeInformation::parse(p));
        t!(super::info::FileInternalInformation::parse(p));
        t!(super::dir::parse_id_full_directory_information(p));
        t!(super::dir::parse_names_information(p));
    }
    ok
}
