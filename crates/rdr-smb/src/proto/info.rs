//! QUERY_INFO / SET_INFO request/response and typed helpers for the information classes rdr
//! uses ([MS-FSCC] 2.4 and 2.5).

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{Command, FileAttributes, FileInfoClass, FsInfoClass, InfoType};
use super::error::ProtoResult;
use super::header::{FileId, HEADER_SIZE, SmbMessage};
use super::time::FileTime;
use super::utf16::{decode_utf16le, put_utf16le};
use super::wire::{Reader, body_reader, len32, msg_offset, patch_u16, patch_u32, slice_at};

/// QUERY_INFO request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfoRequest {
    /// InfoType.
    pub info_type: InfoType,
    /// FileInfoClass (a [`FileInfoClass`] or [`FsInfoClass`] value, 0 for security).
    pub info_class: u8,
    /// OutputBufferLength: the most the server may return.
    pub output_buffer_length: u32,
    /// Input buffer (quota / EA queries).
    pub input: Bytes,
    /// AdditionalInformation (security information flags).
    pub additional_information: u32,
    /// Flags.
    pub flags: u32,
    /// The handle.
    pub file_id: FileId,
}

impl QueryInfoRequest {
    /// A file-information query.
    pub fn file(file_id: FileId, class: FileInfoClass, output_buffer_length: u32) -> Self {
        QueryInfoRequest {
            info_type: InfoType::FILE,
            info_class: class.0,
            output_buffer_length,
            input: Bytes::new(),
            additional_information: 0,
            flags: 0,
            file_id,
        }
    }

    /// A file-system-information query.
    pub fn fs(file_id: FileId, class: FsInfoClass, output_buffer_length: u32) -> Self {
        QueryInfoRequest {
            info_type: InfoType::FILESYSTEM,
            ..Self::file(file_id, FileInfoClass(class.0), output_buffer_length)
        }
    }
}

const M_QIREQ: &str = "QUERY_INFO request";
const M_QIRSP: &str = "QUERY_INFO response";
const M_SIREQ: &str = "SET_INFO request";
const M_SIRSP: &str = "SET_INFO response";

impl SmbMessage for QueryInfoRequest {
    const COMMAND: Command = Command::QUERY_INFO;
    const NAME: &'static str = M_QIREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(41);
        buf.put_u8(self.info_type.0);
        buf.put_u8(self.info_class);
        buf.put_u32_le(self.output_buffer_length);
        let off_pos = buf.len();
        buf.put_u16_le(0);
        buf.put_u16_le(0);
        buf.put_u32_le(len32(self.input.len(), M_QIREQ, "InputBufferLength")?);
        buf.put_u32_le(self.additional_information);
        buf.put_u32_le(self.flags);
        self.file_id.put(buf);
        if self.input.is_empty() {
            buf.put_u8(0);
        } else {
            patch_u16(buf, off_pos, msg_offset(buf, start) as u16);
            buf.extend_from_slice(&self.input);
        }
        Ok(())
    }

    fn payload_size(&self) -> usize {
        (self.output_buffer_length as usize).max(self.input.len())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_QIREQ)?;
        r.structure_size(41)?;
        let info_type = InfoType(r.u8("InfoType")?);
        let info_class = r.u8("FileInfoClass")?;
        let output_buffer_length = r.u32("OutputBufferLength")?;
        let in_off = r.u16("InputBufferOffset")? as usize;
        r.skip(2, "Reserved")?;
        let in_len = r.u32("InputBufferLength")? as usize;
        let additional_information = r.u32("AdditionalInformation")?;
        let flags = r.u32("Flags")?;
        let file_id = FileId::read(&mut r)?;
        Ok(QueryInfoRequest {
            info_type,
            info_class,
            output_buffer_length,
            input: slice_at(msg, in_off, in_len, HEADER_SIZE, M_QIREQ, "InputBuffer")?,
            additional_information,
            flags,
            file_id,
        })
    }
}

/// QUERY_INFO response: the information buffer (zero-copy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoResponse {
    /// The output buffer.
    pub output: Bytes,
}

impl SmbMessage for QueryInfoResponse {
    const COMMAND: Command = Command::QUERY_INFO;
    const NAME: &'static str = M_QIRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(9);
        buf.put_u16_le(if self.output.is_empty() {
            0
        } else {
            (HEADER_SIZE + 8) as u16
        });
        buf.put_u32_le(len32(self.output.len(), M_QIRSP, "OutputBufferLength")?);
        if self.output.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&self.output);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_QIRSP)?;
        r.structure_size(9)?;
        let off = r.u16("OutputBufferOffset")? as usize;
        let len = r.u32("OutputBufferLength")? as usize;
        Ok(QueryInfoResponse {
            output: slice_at(msg, off, len, HEADER_SIZE + 8, M_QIRSP, "OutputBuffer")?,
        })
    }
}

/// SET_INFO request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfoRequest {
    /// InfoType.
    pub info_type: InfoType,
    /// FileInfoClass.
    pub info_class: u8,
    /// AdditionalInformation.
    pub additional_information: u32,
    /// The handle.
    pub file_id: FileId,
    /// The information buffer (e.g. from [`FileBasicInformation::encode`]).
    pub buffer: Bytes,
}

impl SetInfoRequest {
    /// A file-information set.
    pub fn file(file_id: FileId, class: FileInfoClass, buffer: Bytes) -> Self {
        SetInfoRequest {
            info_type: InfoType::FILE,
            info_class: class.0,
            additional_information: 0,
            file_id,
            buffer,
        }
    }
}

impl SmbMessage for SetInfoRequest {
    const COMMAND: Command = Command::SET_INFO;
    const NAME: &'static str = M_SIREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(33);
        buf.put_u8(self.info_type.0);
        buf.put_u8(self.info_class);
        buf.put_u32_le(len32(self.buffer.len(), M_SIREQ, "BufferLength")?);
        let off_pos = buf.len();
        buf.put_u16_le(0);
        buf.put_u16_le(0);
        buf.put_u32_le(self.additional_information);
        self.file_id.put(buf);
        patch_u16(buf, off_pos, msg_offset(buf, start) as u16);
        if self.buffer.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&self.buffer);
        }
        Ok(())
    }

    fn payload_size(&self) -> usize {
        self.buffer.len()
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_SIREQ)?;
        r.structure_size(33)?;
        let info_type = InfoType(r.u8("InfoType")?);
        let info_class = r.u8("FileInfoClass")?;
        let len = r.u32("BufferLength")? as usize;
        let off = r.u16("BufferOffset")? as usize;
        r.skip(2, "Reserved")?;
        let additional_information = r.u32("AdditionalInformation")?;
        let file_id = FileId::read(&mut r)?;
        Ok(SetInfoRequest {
            info_type,
            info_class,
            additional_information,
            file_id,
            buffer: slice_at(msg, off, len, HEADER_SIZE, M_SIREQ, "Buffer")?,
        })
    }
}

/// SET_INFO response (StructureSize 2, no fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoResponse;

impl SmbMessage for SetInfoResponse {
    const COMMAND: Command = Command::SET_INFO;
    const NAME: &'static str = M_SIRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(2);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_SIRSP)?;
        r.structure_size(2)?;
        Ok(SetInfoResponse)
    }
}

/// FileBasicInformation (class 4): times and attributes. In SET_INFO, a zero time means
/// "leave unchanged" and zero attributes mean "leave unchanged".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileBasicInformation {
    /// CreationTime.
    pub creation_time: FileTime,
    /// LastAccessTime.
    pub last_access_time: FileTime,
    /// LastWriteTime.
    pub last_write_time: FileTime,
    /// ChangeTime.
    pub change_time: FileTime,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
}

impl FileBasicInformation {
    /// Size on the wire.
    pub const SIZE: usize = 40;

    /// The 40-byte buffer.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(Self::SIZE);
        for t in [
            self.creation_time,
            self.last_access_time,
            self.last_write_time,
            self.change_time,
        ] {
            b.put_u64_le(t.0);
        }
        b.put_u32_le(self.file_attributes.bits());
        b.put_u32_le(0);
        b.freeze()
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        Self::read(&mut Reader::at(data, 0, "FileBasicInformation"))
    }

    fn read(r: &mut Reader<'_>) -> ProtoResult<Self> {
        let v = FileBasicInformation {
            creation_time: FileTime(r.u64("CreationTime")?),
            last_access_time: FileTime(r.u64("LastAccessTime")?),
            last_write_time: FileTime(r.u64("LastWriteTime")?),
            change_time: FileTime(r.u64("ChangeTime")?),
            file_attributes: FileAttributes::from_bits_retain(r.u32("FileAttributes")?),
        };
        r.skip(4, "Reserved")?;
        Ok(v)
    }
}

/// FileStandardInformation (class 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStandardInformation {
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// NumberOfLinks.
    pub number_of_links: u32,
    /// DeletePending.
    pub delete_pending: bool,
    /// Directory.
    pub directory: bool,
}

impl FileStandardInformation {
    /// Size on the wire.
    pub const SIZE: usize = 24;

    /// The 24-byte buffer.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(Self::SIZE);
        b.put_u64_le(self.allocation_size);
        b.put_u64_le(self.end_of_file);
        b.put_u32_le(self.number_of_links);
        b.put_u8(self.delete_pending as u8);
        b.put_u8(self.directory as u8);
        b.put_u16_le(0);
        b.freeze()
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        Self::read(&mut Reader::at(data, 0, "FileStandardInformation"))
    }

    fn read(r: &mut Reader<'_>) -> ProtoResult<Self> {
        let v = FileStandardInformation {
            allocation_size: r.u64("AllocationSize")?,
            end_of_file: r.u64("EndOfFile")?,
            number_of_links: r.u32("NumberOfLinks")?,
            delete_pending: r.u8("DeletePending")? != 0,
            directory: r.u8("Directory")? != 0,
        };
        r.skip(2, "Reserved")?;
        Ok(v)
    }
}

/// FileAllInformation (class 18), parse only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAllInformation {
    /// Basic part.
    pub basic: FileBasicInformation,
    /// Standard part.
    pub standard: FileStandardInformation,
    /// IndexNumber (FileInternalInformation; the inode number on Samba).
    pub index_number: u64,
    /// EaSize.
    pub ea_size: u32,
    /// AccessFlags.
    pub access_flags: u32,
    /// CurrentByteOffset.
    pub current_byte_offset: u64,
    /// Mode.
    pub mode: u32,
    /// AlignmentRequirement.
    pub alignment_requirement: u32,
    /// FileName (may be empty, or cut short when the server returns BUFFER_OVERFLOW).
    pub name: String,
}

impl FileAllInformation {
    /// Parses the buffer (100 fixed bytes + name).
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        const M: &str = "FileAllInformation";
        let mut r = Reader::at(data, 0, M);
        let basic = FileBasicInformation::read(&mut r)?;
        let standard = FileStandardInformation::read(&mut r)?;
        let index_number = r.u64("IndexNumber")?;
        let ea_size = r.u32("EaSize")?;
        let access_flags = r.u32("AccessFlags")?;
        let current_byte_offset = r.u64("CurrentByteOffset")?;
        let mode = r.u32("Mode")?;
        let alignment_requirement = r.u32("AlignmentRequirement")?;
        let n = r.u32("FileNameLength")? as usize;
        let name = decode_utf16le(r.take(n, "FileName")?, M, "FileName")?;
        Ok(FileAllInformation {
            basic,
            standard,
            index_number,
            ea_size,
            access_flags,
            current_byte_offset,
            mode,
            alignment_requirement,
            name,
        })
    }

    /// Encodes the buffer (for tests and in-memory servers).
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(104);
        b.extend_from_slice(&self.basic.encode());
        b.extend_from_slice(&self.standard.encode());
        b.put_u64_le(self.index_number);
        b.put_u32_le(self.ea_size);
        b.put_u32_le(self.access_flags);
        b.put_u64_le(self.current_byte_offset);
        b.put_u32_le(self.mode);
        b.put_u32_le(self.alignment_requirement);
        let pos = b.len();
        b.put_u32_le(0);
        let n = put_utf16le(&mut b, &self.name);
        patch_u32(
            &mut b,
            pos,
            len32(n, "FileAllInformation", "FileNameLength")?,
        );
        Ok(b.freeze())
    }
}

/// FileEndOfFileInformation (class 20): truncate/extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileEndOfFileInformation {
    /// New end of file.
    pub end_of_file: u64,
}

impl FileEndOfFileInformation {
    /// The 8-byte buffer.
    pub fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(&self.end_of_file.to_le_bytes())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileEndOfFileInformation");
        Ok(FileEndOfFileInformation {
            end_of_file: r.u64("EndOfFile")?,
        })
    }
}

/// FileRenameInformation for SMB2 (class 10, FILE_RENAME_INFORMATION_TYPE_2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRenameInformation {
    /// Replace an existing target.
    pub replace_if_exists: bool,
    /// RootDirectory (must be 0 over the network).
    pub root_directory: u64,
    /// The new name, relative to the share root.
    pub name: String,
}

impl FileRenameInformation {
    /// The buffer (20 fixed bytes + name).
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(20 + self.name.len() * 2);
        b.put_u8(self.replace_if_exists as u8);
        b.put_bytes(0, 7);
        b.put_u64_le(self.root_directory);
        b.put_u32_le(0);
        let n = put_utf16le(&mut b, &self.name);
        patch_u32(
            &mut b,
            16,
            len32(n, "FileRenameInformation", "FileNameLength")?,
        );
        Ok(b.freeze())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        const M: &str = "FileRenameInformation";
        let mut r = Reader::at(data, 0, M);
        let replace_if_exists = r.u8("ReplaceIfExists")? != 0;
        r.skip(7, "Reserved")?;
        let root_directory = r.u64("RootDirectory")?;
        let n = r.u32("FileNameLength")? as usize;
        let name = decode_utf16le(r.take(n, "FileName")?, M, "FileName")?;
        Ok(FileRenameInformation {
            replace_if_exists,
            root_directory,
            name,
        })
    }
}

/// FileDispositionInformation (class 13): delete on close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileDispositionInformation {
    /// DeletePending.
    pub delete_pending: bool,
}

impl FileDispositionInformation {
    /// The 1-byte buffer.
    pub fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(&[self.delete_pending as u8])
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileDispositionInformation");
        Ok(FileDispositionInformation {
            delete_pending: r.u8("DeletePending")? != 0,
        })
    }
}

/// FileNetworkOpenInformation (class 34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileNetworkOpenInformation {
    /// CreationTime.
    pub creation_time: FileTime,
    /// LastAccessTime.
    pub last_access_time: FileTime,
    /// LastWriteTime.
    pub last_write_time: FileTime,
    /// ChangeTime.
    pub change_time: FileTime,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
}

impl FileNetworkOpenInformation {
    /// Size on the wire.
    pub const SIZE: usize = 56;

    /// The 56-byte buffer.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(Self::SIZE);
        for t in [
            self.creation_time,
            self.last_access_time,
            self.last_write_time,
            self.change_time,
        ] {
            b.put_u64_le(t.0);
        }
        b.put_u64_le(self.allocation_size);
        b.put_u64_le(self.end_of_file);
        b.put_u32_le(self.file_attributes.bits());
        b.put_u32_le(0);
        b.freeze()
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileNetworkOpenInformation");
        let v = FileNetworkOpenInformation {
            creation_time: FileTime(r.u64("CreationTime")?),
            last_access_time: FileTime(r.u64("LastAccessTime")?),
            last_write_time: FileTime(r.u64("LastWriteTime")?),
            change_time: FileTime(r.u64("ChangeTime")?),
            allocation_size: r.u64("AllocationSize")?,
            end_of_file: r.u64("EndOfFile")?,
            file_attributes: FileAttributes::from_bits_retain(r.u32("FileAttributes")?),
        };
        r.skip(4, "Reserved")?;
        Ok(v)
    }
}

/// FileFsFullSizeInformation (fs class 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsFullSizeInformation {
    /// TotalAllocationUnits.
    pub total_allocation_units: u64,
    /// CallerAvailableAllocationUnits.
    pub caller_available_allocation_units: u64,
    /// ActualAvailableAllocationUnits.
    pub actual_available_allocation_units: u64,
    /// SectorsPerAllocationUnit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector.
    pub bytes_per_sector: u32,
}

impl FileFsFullSizeInformation {
    /// The 32-byte buffer.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(32);
        b.put_u64_le(self.total_allocation_units);
        b.put_u64_le(self.caller_available_allocation_units);
        b.put_u64_le(self.actual_available_allocation_units);
        b.put_u32_le(self.sectors_per_allocation_unit);
        b.put_u32_le(self.bytes_per_sector);
        b.freeze()
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileFsFullSizeInformation");
        Ok(FileFsFullSizeInformation {
            total_allocation_units: r.u64("TotalAllocationUnits")?,
            caller_available_allocation_units: r.u64("CallerAvailableAllocationUnits")?,
            actual_available_allocation_units: r.u64("ActualAvailableAllocationUnits")?,
            sectors_per_allocation_unit: r.u32("SectorsPerAllocationUnit")?,
            bytes_per_sector: r.u32("BytesPerSector")?,
        })
    }
}

/// FileFsSizeInformation (fs class 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSizeInformation {
    /// TotalAllocationUnits.
    pub total_allocation_units: u64,
    /// AvailableAllocationUnits.
    pub available_allocation_units: u64,
    /// SectorsPerAllocationUnit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector.
    pub bytes_per_sector: u32,
}

impl FileFsSizeInformation {
    /// The 24-byte buffer.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(24);
        b.put_u64_le(self.total_allocation_units);
        b.put_u64_le(self.available_allocation_units);
        b.put_u32_le(self.sectors_per_allocation_unit);
        b.put_u32_le(self.bytes_per_sector);
        b.freeze()
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileFsSizeInformation");
        Ok(FileFsSizeInformation {
            total_allocation_units: r.u64("TotalAllocationUnits")?,
            available_allocation_units: r.u64("AvailableAllocationUnits")?,
            sectors_per_allocation_unit: r.u32("SectorsPerAllocationUnit")?,
            bytes_per_sector: r.u32("BytesPerSector")?,
        })
    }
}

/// FileLinkInformation (class 11) has the FileRenameInformation-for-SMB2 layout: send it with
/// [`FileInfoClass::FileLinkInformation`] to make a hard link named `name`.
pub type FileLinkInformation = FileRenameInformation;

/// FileInternalInformation (class 6): the server's file number (the inode on Samba).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInternalInformation {
    /// IndexNumber.
    pub index_number: u64,
}

impl FileInternalInformation {
    /// The 8-byte buffer.
    pub fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(&self.index_number.to_le_bytes())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileInternalInformation");
        Ok(FileInternalInformation {
            index_number: r.u64("IndexNumber")?,
        })
    }
}

/// FileAllocationInformation (class 19): preallocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileAllocationInformation {
    /// AllocationSize.
    pub allocation_size: u64,
}

impl FileAllocationInformation {
    /// The 8-byte buffer.
    pub fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(&self.allocation_size.to_le_bytes())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "FileAllocationInformation");
        Ok(FileAllocationInformation {
            allocation_size: r.u64("AllocationSize")?,
        })
    }
}

/// FileFsAttributeInformation (fs class 5): what the file system supports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsAttributeInformation {
    /// FileSystemAttributes (FILE_CASE_SENSITIVE_SEARCH 0x1, FILE_CASE_PRESERVED_NAMES 0x2, ...).
    pub attributes: u32,
    /// MaximumComponentNameLength (the longest file name, in characters).
    pub maximum_component_name_length: u32,
    /// FileSystemName ("NTFS", ...).
    pub file_system_name: String,
}

impl FileFsAttributeInformation {
    /// The buffer.
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(12 + 2 * self.file_system_name.len());
        b.put_u32_le(self.attributes);
        b.put_u32_le(self.maximum_component_name_length);
        b.put_u32_le(0);
        let n = put_utf16le(&mut b, &self.file_system_name);
        patch_u32(
            &mut b,
            8,
            len32(n, "FileFsAttributeInformation", "FileSystemNameLength")?,
        );
        Ok(b.freeze())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        const M: &str = "FileFsAttributeInformation";
        let mut r = Reader::at(data, 0, M);
        let attributes = r.u32("FileSystemAttributes")?;
        let maximum_component_name_length = r.u32("MaximumComponentNameLength")?;
        let n = r.u32("FileSystemNameLength")? as usize;
        let file_system_name = decode_utf16le(r.take(n, "FileSystemName")?, M, "FileSystemName")?;
        Ok(FileFsAttributeInformation {
            attributes,
            maximum_component_name_length,
            file_system_name,
        })
    }
}

/// FileFsVolumeInformation (fs class 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsVolumeInformation {
    /// VolumeCreationTime.
    pub creation_time: FileTime,
    /// VolumeSerialNumber.
    pub serial_number: u32,
    /// SupportsObjects.
    pub supports_objects: bool,
    /// VolumeLabel.
    pub label: String,
}

impl FileFsVolumeInformation {
    /// The buffer.
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(18 + 2 * self.label.len());
        b.put_u64_le(self.creation_time.0);
        b.put_u32_le(self.serial_number);
        b.put_u32_le(0);
        b.put_u8(self.supports_objects as u8);
        b.put_u8(0);
        let n = put_utf16le(&mut b, &self.label);
        patch_u32(
            &mut b,
            12,
            len32(n, "FileFsVolumeInformation", "VolumeLabelLength")?,
        );
        Ok(b.freeze())
    }

    /// Parses the buffer.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        const M: &str = "FileFsVolumeInformation";
        let mut r = Reader::at(data, 0, M);
        let creation_time = FileTime(r.u64("VolumeCreationTime")?);
        let serial_number = r.u32("VolumeSerialNumber")?;
        let n = r.u32("VolumeLabelLength")? as usize;
        let supports_objects = r.u8("SupportsObjects")? != 0;
        r.skip(1, "Reserved")?;
        let label = decode_utf16le(r.take(n, "VolumeLabel")?, M, "VolumeLabel")?;
        Ok(FileFsVolumeInformation {
            creation_time,
            serial_number,
            supports_objects,
            label,
        })
    }
}
