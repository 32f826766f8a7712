//! Files that hold rows or task state: created readable by their owner
//! only, named so that no source name can reach outside their root.
//!
//! Warehouse Parquet files carry whole rows and state files carry binlog
//! positions and schemas, so both are created `0600` in folders created
//! `0700`, whatever the process's umask (folders that exist already keep
//! their mode: they are the operator's). A name taken from the source (a
//! table called `../../x`, a commit unit that embeds `db.table`) becomes a
//! single path component through [`file_component`], and a relative path
//! is joined to its root only through [`within`], which refuses anything
//! but plain components.
//!
//! ```
//! use sync_core::private_fs::file_component;
//! assert_eq!(file_component("shop.orders"), "shop.orders");
//! assert_eq!(file_component("../../etc/x"), "..%2F..%2Fetc%2Fx");
//! ```

use crate::error::{Error, Result};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// `dir` and its missing parents, the ones created here `0700`.
///
/// # Errors
/// [`Error::Io`] naming the folder.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io("creating", dir, e))
}

/// Opens `path` for writing, created `0600` (or truncated).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn create_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| Error::io("creating", path, e))
}

/// Opens `path` for reading and writing, created `0600` when missing and
/// never truncated (a lock file whose holder's details another process may
/// be reading).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn open_or_create(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| Error::io("opening", path, e))
}

/// Writes `bytes` to `path` (created `0600` or truncated) and fsyncs it.
///
/// # Errors
/// [`Error::Io`] when creating, writing or fsyncing fails.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create_file(path)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    f.sync_all().map_err(|e| Error::io("fsyncing", path, e))
}

/// `name` as one file-name component: ASCII letters, digits, `_`, `-` and
/// `.` and other alphanumeric characters stay, everything else (`/`, `\`,
/// `%`, spaces, controls, …) becomes `%XX` per UTF-8 byte; a name made of
/// dots only is escaped whole. The mapping is one-to-one, and the names of
/// ordinary tables (`db.table`) come out unchanged.
pub fn file_component(name: &str) -> String {
    let dots_only = !name.is_empty() && name.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = !dots_only && (c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// `root` joined with `rel`, which must be made of plain components only
/// (no `..`, no root, no prefix): the one way a file under a root is named.
///
/// # Errors
/// [`Error::UnsafePath`] naming the root and the path.
pub fn within(root: &Path, rel: impl AsRef<Path>) -> Result<PathBuf> {
    let rel = rel.as_ref();
    let plain = rel.components().next().is_some()
        && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Error::UnsafePath {
            root: root.to_path_buf(),
            path: rel.to_path_buf(),
        });
    }
    Ok(root.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_never_leave_their_folder_and_never_collide() {
        let names = [
            "shop.orders",
            "..",
            ".",
            "../../x",
            "a/b",
            "a%2Fb",
            "a\\b",
            "名前.表",
            "with space",
            "",
            "nul\0byte",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let c = file_component(n);
            assert!(!c.is_empty() && c != "." && c != "..", "{n:?} -> {c:?}");
            assert!(!c.contains(['/', '\\', '\0']), "{n:?} -> {c:?}");
            assert_eq!(Path::new(&c).components().count(), 1, "{n:?} -> {c:?}");
            assert!(seen.insert(c), "{n:?} collides");
        }
        assert_eq!(file_component("shop.orders"), "shop.orders");
        assert_eq!(file_component("base-shop.t-000001"), "base-shop.t-000001");
    }

    #[test]
    fn within_refuses_everything_but_plain_components() {
        let root = Path::new("/data/wh");
        assert_eq!(
            within(root, "t_log/modifytime_day=01/u-00000.parquet").expect("plain"),
            root.join("t_log/modifytime_day=01/u-00000.parquet")
        );
        for bad in ["../x", "t/../../x", "/etc/passwd", "", "."] {
            assert!(within(root, bad).is_err(), "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn files_are_0600_in_0700_folders_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).expect("dirs");
        let file = dir.join("f");
        write_durably(&file, b"row data").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
    }
}
