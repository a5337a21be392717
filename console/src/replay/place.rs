//! Where index files live, and how they are opened and written without trusting
//! the paths: next to the recording when others cannot write that directory, else in
//! a per-user private cache directory (`$XDG_CACHE_HOME/lucid`, else
//! `~/.cache/lucid`, mode 0700), else nowhere (the index then lives in memory).
//!
//! An index file is read only when it is a regular file owned by this user (opened
//! without following a symlink), and written under a fresh name created exclusively,
//! then renamed over the old one (a rename replaces a symlink instead of following it).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The side file of `recording`.
#[must_use]
pub fn index_path(recording: &Path) -> PathBuf {
    let mut p = recording.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

/// Where the index of `recording` may be, most preferred first. `name` names it in
/// the private directory (unique per recording path and contents).
pub(crate) fn places(recording: &Path, name: &str) -> Vec<PathBuf> {
    let mut places = Vec::with_capacity(2);
    if dir_is_private_enough(recording.parent().filter(|p| !p.as_os_str().is_empty())) {
        places.push(index_path(recording));
    }
    if let Some(dir) = cache_base().and_then(|base| private_dir(&base.join("lucid")).ok()) {
        places.push(dir.join(name));
    }
    places
}

/// Whether no other user can write `dir` (the current directory for `None`).
#[cfg(unix)]
fn dir_is_private_enough(dir: Option<&Path>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(dir.unwrap_or(Path::new("."))).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o002 == 0)
}

#[cfg(not(unix))]
fn dir_is_private_enough(dir: Option<&Path>) -> bool {
    fs::metadata(dir.unwrap_or(Path::new("."))).is_ok_and(|m| m.is_dir())
}

/// `$XDG_CACHE_HOME`, else `$HOME/.cache` (absolute paths only, as the XDG spec says).
fn cache_base() -> Option<PathBuf> {
    let absolute = |p: PathBuf| p.is_absolute().then_some(p);
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache"))
                .and_then(absolute)
        })
}

/// `dir`, created if missing: a real directory (not a symlink) owned by this user
/// that only this user can enter.
pub(crate) fn private_dir(dir: &Path) -> io::Result<PathBuf> {
    if let Some(parent) = dir.parent() {
        builder().recursive(true).create(parent)?;
    }
    match builder().create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!("{} is not a directory", dir.display())));
    }
    make_private(dir, &meta)?;
    Ok(dir.to_path_buf())
}

#[cfg(unix)]
fn builder() -> DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = DirBuilder::new();
    b.mode(0o700);
    b
}

#[cfg(not(unix))]
fn builder() -> DirBuilder {
    DirBuilder::new()
}

#[cfg(unix)]
fn make_private(dir: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if meta.uid() != euid() {
        return Err(io::Error::other(format!("{} belongs to another user", dir.display())));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_dir: &Path, _meta: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Opens an index file for reading: a regular file owned by this user, not reached
/// through a symlink.
pub(crate) fn open_index(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed());
    }
    let f = options.open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != euid() {
            return Err(io::Error::other("owned by another user"));
        }
    }
    Ok(f)
}

/// A new file beside `target` to write its next version into (never an existing
/// file or symlink); rename it over `target` when complete.
pub(crate) fn create_temporary(target: &Path) -> io::Result<(File, PathBuf)> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut name = target.as_os_str().to_owned();
    name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(name);
    let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((f, tmp))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::replay::tests::TempDir;

    #[test]
    fn the_private_directory_is_created_0700_and_never_through_a_symlink() {
        let base = TempDir::new();
        let dir = private_dir(&base.path().join("cache/lucid")).expect("created");
        assert_eq!(fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);

        // An existing directory that others may enter is closed.
        let open = base.path().join("open");
        fs::create_dir(&open).expect("dir");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        private_dir(&open).expect("taken over");
        assert_eq!(fs::metadata(&open).expect("dir").permissions().mode() & 0o777, 0o700);

        // A symlink in its place (to a directory someone else chose) is refused.
        let elsewhere = base.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("dir");
        let link = base.path().join("link");
        symlink(&elsewhere, &link).expect("symlink");
        assert!(private_dir(&link).is_err());
    }

    #[test]
    fn index_files_are_not_read_through_symlinks_nor_written_over_them() {
        let base = TempDir::new();
        let real = base.file("real.idx", b"LUCIDIDX");
        let link = base.path().join("link.idx");
        symlink(&real, &link).expect("symlink");
        assert!(open_index(&real).is_ok());
        assert!(open_index(&link).is_err(), "a symlinked index is not read");
        let (_, tmp) = create_temporary(&link).expect("temporary");
        assert!(fs::symlink_metadata(&tmp).expect("tmp").is_file());
        assert_ne!(tmp, link);
    }

    #[test]
    fn the_side_file_is_used_only_where_others_cannot_write() {
        let base = TempDir::new();
        let rec = base.file("r.lucid", b"");
        assert_eq!(places(&rec, "x.idx").first(), Some(&index_path(&rec)));
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o1777)).expect("chmod");
        assert!(!places(&rec, "x.idx").contains(&index_path(&rec)));
    }
}
