//! rdr-fuse: the FUSE front end of rdr. One mount per connection (RDBSS VNetRoot); every VFS
//! call becomes an rdr-core request (see DESIGN.md layers). Built on fuser 0.18 (pure Rust).
#![warn(missing_docs)]

pub mod fs;
pub mod inode;
pub mod mount;

pub use fs::{FsOptions, MountStats, RdrFs};
pub use mount::{MountConfig, MountHandle, detach_path, is_dead_mount, is_mount_point, mount};
