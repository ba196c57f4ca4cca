//! rdr-fuse: the FUSE front end of rdr. One mount per connection (RDBSS VNetRoot); every VFS
//! call becomes an rdr-core request on a tokio task (see DESIGN.md layers). Built on fuser 0.18
//! (pure Rust, no libfuse); the mount itself is made here with mount(2) on a pinned directory
//! handle, with `allow_other` + `default_permissions`, and every path-taking request is refused
//! unless it comes from the connection's owner or root.
//!
//! Caching follows docs/caching-design.md §5.1: no FUSE writeback cache, dirty data lives in
//! the daemon (rdr-core), per-open `FOPEN_DIRECT_IO` unless the open may cache reads.
#![warn(missing_docs)]

pub mod dircache;
pub mod fs;
pub mod inode;
pub mod mount;
pub mod symlink;

pub use fs::{
    BULK_IO, BulkHook, Change, ChangeHook, FsOptions, FsProbe, LastError, MountStats, RdrFs,
};
pub use mount::{
    MountConfig, MountHandle, detach_path, is_dead_mount, is_mount_point, mount, mount_fd,
    open_dir_nofollow,
};
