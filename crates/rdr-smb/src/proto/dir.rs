//! QUERY_DIRECTORY request/response, and parsing of the directory entries it returns
//! (FileDirectoryInformation, FileIdBothDirectoryInformation) through NextEntryOffset chains.
//! CHANGE_NOTIFY request/response and FILE_NOTIFY_INFORMATION live here too: same shape.

use bytes::{BufMut, Bytes, BytesMut};

use bitflags::bitflags;

use super::consts::{Command, CompletionFilter, FileAttributes, FileInfoClass, NotifyAction};
use super::error::{ProtoError, ProtoResult};
use super::header::{FileId, HEADER_SIZE, SmbMessage};
use super::time::FileTime;
use super::utf16::{decode_utf16le, put_utf16le};
use super::wire::{Reader, align8, body_reader, len16, len32, patch_u16, patch_u32, slice_at, sub};

bitflags! {
    /// QUERY_DIRECTORY `Flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct QueryDirectoryFlags: u8 {
        /// Restart the enumeration from the start.
        const RESTART_SCANS = 0x01;
        /// Return one entry only.
        const RETURN_SINGLE_ENTRY = 0x02;
        /// Resume at FileIndex.
        const INDEX_SPECIFIED = 0x04;
        /// Reopen the enumeration with a new pattern.
        const REOPEN = 0x10;
        const _ = !0;
    }
}

/// QUERY_DIRECTORY request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDirectoryRequest {
    /// The entry format.
    pub info_class: FileInfoClass,
    /// Flags.
    pub flags: QueryDirectoryFlags,
    /// FileIndex (with INDEX_SPECIFIED).
    pub file_index: u32,
    /// The directory handle.
    pub file_id: FileId,
    /// The search pattern ("*" for all).
    pub pattern: String,
    /// OutputBufferLength: the most the server may return.
    pub output_buffer_length: u32,
}

const M_QDREQ: &str = "QUERY_DIRECTORY request";
const M_QDRSP: &str = "QUERY_DIRECTORY response";

impl SmbMessage for QueryDirectoryRequest {
    const COMMAND: Command = Command::QUERY_DIRECTORY;
    const NAME: &'static str = M_QDREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(33);
        buf.put_u8(self.info_class.0);
        buf.put_u8(self.flags.bits());
        buf.put_u32_le(self.file_index);
        self.file_id.put(buf);
        buf.put_u16_le((HEADER_SIZE + 32) as u16);
        let len_pos = buf.len();
        buf.put_u16_le(0);
        buf.put_u32_le(self.output_buffer_length);
        let n = put_utf16le(buf, &self.pattern);
        patch_u16(buf, len_pos, len16(n, M_QDREQ, "FileNameLength")?);
        if n == 0 {
            buf.put_u8(0);
        }
        Ok(())
    }

    fn payload_size(&self) -> usize {
        self.output_buffer_length as usize
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_QDREQ)?;
        r.structure_size(33)?;
        let info_class = FileInfoClass(r.u8("FileInformationClass")?);
        let flags = QueryDirectoryFlags::from_bits_retain(r.u8("Flags")?);
        let file_index = r.u32("FileIndex")?;
        let file_id = FileId::read(&mut r)?;
        let off = r.u16("FileNameOffset")? as usize;
        let len = r.u16("FileNameLength")? as usize;
        let output_buffer_length = r.u32("OutputBufferLength")?;
        let pattern = decode_utf16le(
            sub(msg, off, len, M_QDREQ, "FileName")?,
            M_QDREQ,
            "FileName",
        )?;
        Ok(QueryDirectoryRequest {
            info_class,
            flags,
            file_index,
            file_id,
            pattern,
            output_buffer_length,
        })
    }
}

/// Encodes the StructureSize-9 "OutputBufferOffset/Length + buffer" body shared by
/// QUERY_DIRECTORY, CHANGE_NOTIFY and QUERY_INFO responses.
fn encode_output_body(buf: &mut BytesMut, output: &Bytes, m: &'static str) -> ProtoResult<()> {
    buf.put_u16_le(9);
    buf.put_u16_le(if output.is_empty() {
        0
    } else {
        (HEADER_SIZE + 8) as u16
    });
    buf.put_u32_le(len32(output.len(), m, "OutputBufferLength")?);
    if output.is_empty() {
        buf.put_u8(0);
    } else {
        buf.extend_from_slice(output);
    }
    Ok(())
}

fn decode_output_body(msg: &Bytes, m: &'static str) -> ProtoResult<Bytes> {
    let mut r = body_reader(msg, m)?;
    r.structure_size(9)?;
    let off = r.u16("OutputBufferOffset")? as usize;
    let len = r.u32("OutputBufferLength")? as usize;
    slice_at(msg, off, len, HEADER_SIZE + 8, m, "OutputBuffer")
}

macro_rules! output_response {
    ($(#[$doc:meta])* $ty:ident, $cmd:expr, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $ty {
            /// The output buffer (a zero-copy slice of the received message).
            pub output: Bytes,
        }

        impl SmbMessage for $ty {
            const COMMAND: Command = $cmd;
            const NAME: &'static str = $name;

            fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
                encode_output_body(buf, &self.output, $name)
            }

            fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
                Ok($ty { output: decode_output_body(msg, $name)? })
            }
        }
    };
}

output_response!(
    /// QUERY_DIRECTORY response: entries in the requested class; parse them with
    /// [`parse_directory_information`] or [`parse_id_both_directory_information`].
    QueryDirectoryResponse, Command::QUERY_DIRECTORY, M_QDRSP);

/// Splits a NextEntryOffset chain into entries (each a slice bounded by the next entry), each
/// at least `min_len` bytes.
pub fn split_entries(buf: &Bytes, min_len: usize, m: &'static str) -> ProtoResult<Vec<Bytes>> {
    let mut out = Vec::new();
    if buf.is_empty() {
        return Ok(out);
    }
    let mut pos = 0usize;
    loop {
        let mut r = Reader::at(buf, pos, m);
        let next = r.u32("NextEntryOffset")? as usize;
        let end = if next == 0 {
            buf.len()
        } else {
            pos.checked_add(next)
                .filter(|&e| e <= buf.len() && next >= min_len)
                .ok_or(ProtoError::BadValue {
                    msg: m,
                    field: "NextEntryOffset",
                    value: next as u64,
                    why: "points before the end of the entry or outside the buffer",
                })?
        };
        if end - pos < min_len {
            return Err(ProtoError::Truncated {
                msg: m,
                field: "entry",
                offset: pos,
                need: min_len,
                have: end - pos,
            });
        }
        out.push(buf.slice(pos..end));
        if next == 0 {
            return Ok(out);
        }
        pos = end;
    }
}

/// Pads and links entries written by an encoder: `starts` are the entry start positions.
fn link_entries(buf: &mut BytesMut, starts: &[usize], m: &'static str) -> ProtoResult<()> {
    for w in starts.windows(2) {
        let next = len32(w[1] - w[0], m, "NextEntryOffset")?;
        patch_u32(buf, w[0], next);
    }
    Ok(())
}

/// One FileDirectoryInformation entry (the fields shared by most directory classes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryInformation {
    /// FileIndex.
    pub file_index: u32,
    /// CreationTime.
    pub creation_time: FileTime,
    /// LastAccessTime.
    pub last_access_time: FileTime,
    /// LastWriteTime.
    pub last_write_time: FileTime,
    /// ChangeTime.
    pub change_time: FileTime,
    /// EndOfFile.
    pub end_of_file: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// FileName.
    pub name: String,
}

const M_FDI: &str = "FileDirectoryInformation";
const M_FIBDI: &str = "FileIdBothDirectoryInformation";

fn read_dir_common(r: &mut Reader<'_>) -> ProtoResult<DirectoryInformation> {
    r.skip(4, "NextEntryOffset")?;
    Ok(DirectoryInformation {
        file_index: r.u32("FileIndex")?,
        creation_time: FileTime(r.u64("CreationTime")?),
        last_access_time: FileTime(r.u64("LastAccessTime")?),
        last_write_time: FileTime(r.u64("LastWriteTime")?),
        change_time: FileTime(r.u64("ChangeTime")?),
        end_of_file: r.u64("EndOfFile")?,
        allocation_size: r.u64("AllocationSize")?,
        file_attributes: FileAttributes::from_bits_retain(r.u32("FileAttributes")?),
        name: String::new(),
    })
}

fn put_dir_common(buf: &mut BytesMut, e: &DirectoryInformation) {
    buf.put_u32_le(0);
    buf.put_u32_le(e.file_index);
    for t in [
        e.creation_time,
        e.last_access_time,
        e.last_write_time,
        e.change_time,
    ] {
        buf.put_u64_le(t.0);
    }
    buf.put_u64_le(e.end_of_file);
    buf.put_u64_le(e.allocation_size);
    buf.put_u32_le(e.file_attributes.bits());
}

/// Parses a FileDirectoryInformation (class 1) buffer.
pub fn parse_directory_information(buf: &Bytes) -> ProtoResult<Vec<DirectoryInformation>> {
    split_entries(buf, 64, M_FDI)?
        .iter()
        .map(|e| {
            let mut r = Reader::at(e, 0, M_FDI);
            let mut d = read_dir_common(&mut r)?;
            let n = r.u32("FileNameLength")? as usize;
            d.name = decode_utf16le(r.take(n, "FileName")?, M_FDI, "FileName")?;
            Ok(d)
        })
        .collect()
}

/// Encodes FileDirectoryInformation entries (8-byte aligned chain).
pub fn encode_directory_information(entries: &[DirectoryInformation]) -> ProtoResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut starts = Vec::new();
    for e in entries {
        let p = align8(buf.len());
        buf.resize(p, 0);
        starts.push(p);
        put_dir_common(&mut buf, e);
        let len_pos = buf.len();
        buf.put_u32_le(0);
        let n = put_utf16le(&mut buf, &e.name);
        patch_u32(&mut buf, len_pos, len32(n, M_FDI, "FileNameLength")?);
    }
    link_entries(&mut buf, &starts, M_FDI)?;
    Ok(buf.freeze())
}

/// One FileIdBothDirectoryInformation entry (class 37).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdBothDirectoryInformation {
    /// The common fields.
    pub info: DirectoryInformation,
    /// EaSize (or reparse tag for reparse points).
    pub ea_size: u32,
    /// The 8.3 short name (may be empty).
    pub short_name: String,
    /// FileId (the inode number on Samba).
    pub file_id: u64,
}

/// Parses a FileIdBothDirectoryInformation (class 37) buffer.
pub fn parse_id_both_directory_information(
    buf: &Bytes,
) -> ProtoResult<Vec<IdBothDirectoryInformation>> {
    split_entries(buf, 104, M_FIBDI)?
        .iter()
        .map(|e| {
            let mut r = Reader::at(e, 0, M_FIBDI);
            let mut info = read_dir_common(&mut r)?;
            let n = r.u32("FileNameLength")? as usize;
            let ea_size = r.u32("EaSize")?;
            let short_len = r.u8("ShortNameLength")? as usize;
            r.skip(1, "Reserved1")?;
            let short: [u8; 24] = r.array("ShortName")?;
            r.skip(2, "Reserved2")?;
            let file_id = r.u64("FileId")?;
            info.name = decode_utf16le(r.take(n, "FileName")?, M_FIBDI, "FileName")?;
            let short_name = decode_utf16le(
                sub(&short, 0, short_len, M_FIBDI, "ShortName")?,
                M_FIBDI,
                "ShortName",
            )?;
            Ok(IdBothDirectoryInformation {
                info,
                ea_size,
                short_name,
                file_id,
            })
        })
        .collect()
}

/// Encodes FileIdBothDirectoryInformation entries (8-byte aligned chain).
pub fn encode_id_both_directory_information(
    entries: &[IdBothDirectoryInformation],
) -> ProtoResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut starts = Vec::new();
    for e in entries {
        let p = align8(buf.len());
        buf.resize(p, 0);
        starts.push(p);
        put_dir_common(&mut buf, &e.info);
        let len_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(e.ea_size);
        let short = super::utf16::encode_utf16le(&e.short_name);
        if short.len() > 24 {
            return Err(ProtoError::TooLarge {
                msg: M_FIBDI,
                field: "ShortName",
                len: short.len(),
                max: 24,
            });
        }
        buf.put_u8(short.len() as u8);
        buf.put_u8(0);
        buf.put_slice(&short);
        buf.put_bytes(0, 24 - short.len());
        buf.put_u16_le(0);
        buf.put_u64_le(e.file_id);
        let n = put_utf16le(&mut buf, &e.info.name);
        patch_u32(&mut buf, len_pos, len32(n, M_FIBDI, "FileNameLength")?);
    }
    link_entries(&mut buf, &starts, M_FIBDI)?;
    Ok(buf.freeze())
}

/// CHANGE_NOTIFY flag: watch the whole subtree.
pub const WATCH_TREE: u16 = 0x0001;

/// CHANGE_NOTIFY request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    /// Flags (WATCH_TREE).
    pub flags: u16,
    /// OutputBufferLength.
    pub output_buffer_length: u32,
    /// The directory handle.
    pub file_id: FileId,
    /// CompletionFilter.
    pub completion_filter: CompletionFilter,
}

const M_CNREQ: &str = "CHANGE_NOTIFY request";
const M_CNRSP: &str = "CHANGE_NOTIFY response";
const M_FNI: &str = "FILE_NOTIFY_INFORMATION";

impl SmbMessage for ChangeNotifyRequest {
    const COMMAND: Command = Command::CHANGE_NOTIFY;
    const NAME: &'static str = M_CNREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(32);
        buf.put_u16_le(self.flags);
        buf.put_u32_le(self.output_buffer_length);
        self.file_id.put(buf);
        buf.put_u32_le(self.completion_filter.bits());
        buf.put_u32_le(0);
        Ok(())
    }

    fn payload_size(&self) -> usize {
        self.output_buffer_length as usize
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_CNREQ)?;
        r.structure_size(32)?;
        let flags = r.u16("Flags")?;
        let output_buffer_length = r.u32("OutputBufferLength")?;
        let file_id = FileId::read(&mut r)?;
        let completion_filter = CompletionFilter::from_bits_retain(r.u32("CompletionFilter")?);
        r.skip(4, "Reserved")?;
        Ok(ChangeNotifyRequest {
            flags,
            output_buffer_length,
            file_id,
            completion_filter,
        })
    }
}

output_response!(
    /// CHANGE_NOTIFY response: FILE_NOTIFY_INFORMATION entries; parse with
    /// [`parse_notify_information`].
    ChangeNotifyResponse, Command::CHANGE_NOTIFY, M_CNRSP);

/// One FILE_NOTIFY_INFORMATION entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNotifyInformation {
    /// What happened.
    pub action: NotifyAction,
    /// The name relative to the watched directory.
    pub name: String,
}

/// Parses a CHANGE_NOTIFY output buffer.
pub fn parse_notify_information(buf: &Bytes) -> ProtoResult<Vec<FileNotifyInformation>> {
    split_entries(buf, 12, M_FNI)?
        .iter()
        .map(|e| {
            let mut r = Reader::at(e, 0, M_FNI);
            r.skip(4, "NextEntryOffset")?;
            let action = NotifyAction(r.u32("Action")?);
            let n = r.u32("FileNameLength")? as usize;
            let name = decode_utf16le(r.take(n, "FileName")?, M_FNI, "FileName")?;
            Ok(FileNotifyInformation { action, name })
        })
        .collect()
}

/// Encodes FILE_NOTIFY_INFORMATION entries (4-byte aligned chain, as servers send them).
pub fn encode_notify_information(entries: &[FileNotifyInformation]) -> ProtoResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut starts = Vec::new();
    for e in entries {
        let p = (buf.len() + 3) & !3;
        buf.resize(p, 0);
        starts.push(p);
        buf.put_u32_le(0);
        buf.put_u32_le(e.action.0);
        let len_pos = buf.len();
        buf.put_u32_le(0);
        let n = put_utf16le(&mut buf, &e.name);
        patch_u32(&mut buf, len_pos, len32(n, M_FNI, "FileNameLength")?);
    }
    link_entries(&mut buf, &starts, M_FNI)?;
    Ok(buf.freeze())
}

const M_FIFDI: &str = "FileIdFullDirectoryInformation";
const M_FNAMES: &str = "FileNamesInformation";

/// One FileIdFullDirectoryInformation entry (class 38): no short name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdFullDirectoryInformation {
    /// The common fields.
    pub info: DirectoryInformation,
    /// EaSize (or reparse tag for reparse points).
    pub ea_size: u32,
    /// FileId (the inode number on Samba).
    pub file_id: u64,
}

/// Parses a FileIdFullDirectoryInformation (class 38) buffer.
pub fn parse_id_full_directory_information(
    buf: &Bytes,
) -> ProtoResult<Vec<IdFullDirectoryInformation>> {
    split_entries(buf, 80, M_FIFDI)?
        .iter()
        .map(|e| {
            let mut r = Reader::at(e, 0, M_FIFDI);
            let mut info = read_dir_common(&mut r)?;
            let n = r.u32("FileNameLength")? as usize;
            let ea_size = r.u32("EaSize")?;
            r.skip(4, "Reserved")?;
            let file_id = r.u64("FileId")?;
            info.name = decode_utf16le(r.take(n, "FileName")?, M_FIFDI, "FileName")?;
            Ok(IdFullDirectoryInformation {
                info,
                ea_size,
                file_id,
            })
        })
        .collect()
}

/// Encodes FileIdFullDirectoryInformation entries (8-byte aligned chain).
pub fn encode_id_full_directory_information(
    entries: &[IdFullDirectoryInformation],
) -> ProtoResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut starts = Vec::new();
    for e in entries {
        let p = align8(buf.len());
        buf.resize(p, 0);
        starts.push(p);
        put_dir_common(&mut buf, &e.info);
        let len_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(e.ea_size);
        buf.put_u32_le(0);
        buf.put_u64_le(e.file_id);
        let n = put_utf16le(&mut buf, &e.info.name);
        patch_u32(&mut buf, len_pos, len32(n, M_FIFDI, "FileNameLength")?);
    }
    link_entries(&mut buf, &starts, M_FIFDI)?;
    Ok(buf.freeze())
}

/// Parses a FileNamesInformation (class 12) buffer: (FileIndex, name) pairs.
pub fn parse_names_information(buf: &Bytes) -> ProtoResult<Vec<(u32, String)>> {
    split_entries(buf, 12, M_FNAMES)?
        .iter()
        .map(|e| {
            let mut r = Reader::at(e, 0, M_FNAMES);
            r.skip(4, "NextEntryOffset")?;
            let index = r.u32("FileIndex")?;
            let n = r.u32("FileNameLength")? as usize;
            let name = decode_utf16le(r.take(n, "FileName")?, M_FNAMES, "FileName")?;
            Ok((index, name))
        })
        .collect()
}
