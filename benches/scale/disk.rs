//! What a data dir takes on disk: the sum of its files' sizes, and the
//! blocks the file system allocated for them (what `du` counts).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use serde::Serialize;

use super::Res;

#[derive(Debug, Clone, Serialize)]
pub struct FileSize {
    /// Relative to the data dir.
    pub path: String,
    pub bytes: u64,
    pub allocated: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Disk {
    pub bytes: u64,
    pub allocated: u64,
    pub files: Vec<FileSize>,
}

/// Every regular file under `dir`, largest first. Files that go while the
/// walk runs (a live sled replaces some) are skipped.
pub fn usage(dir: &Path) -> Res<Disk> {
    let mut disk = Disk::default();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        let entries = match std::fs::read_dir(&at) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && at != dir => continue,
            Err(e) => return Err(format!("{}: {e}", at.display()).into()),
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let path = entry.path();
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                // st_blocks counts 512-byte units whatever the block size.
                let file = FileSize {
                    path: path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                    bytes: meta.len(),
                    allocated: meta.blocks() * 512,
                };
                disk.bytes += file.bytes;
                disk.allocated += file.allocated;
                disk.files.push(file);
            }
        }
    }
    disk.files
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    Ok(disk)
}
