//! Files read and written where someone else may have planted something (issue 25, findings
//! 7 and 9): a state directory, a config directory.
//!
//! - **Reads** open without blocking (`O_NONBLOCK`, so a FIFO cannot hang the reader), accept
//!   only a regular file (a FIFO, a device such as `/dev/zero`, a socket or a directory is
//!   refused with an error naming what it is) and stop at a size cap. [`read_state`] also
//!   refuses a symbolic link (`O_NOFOLLOW`); [`read_config`] follows one, because Kubernetes
//!   mounts every ConfigMap key as a link into its `..data` directory.
//! - **Writes** ([`write_atomic`]) go to a temporary file with an unpredictable name, created
//!   exclusively (`O_EXCL`, which also refuses a planted link) with mode 0600, fsynced and
//!   renamed over the target; the directory is fsynced after.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Cap for config files and the files they name (templates, certificates, keys).
pub(crate) const CONFIG_CAP: u64 = 16 << 20;

/// Reads a state file: no symbolic link, a regular file, at most `cap` bytes.
///
/// # Errors
/// `NotFound` when missing; otherwise an error that says what was found instead.
pub(crate) fn read_state(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    read(path, cap, false)
}

/// Reads a config file, or a file a config names: symbolic links are followed (ConfigMap
/// mounts), the target must be a regular file of at most `cap` bytes.
///
/// # Errors
/// `NotFound` when missing; otherwise an error that says what was found instead.
pub(crate) fn read_config(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    read(path, cap, true)
}

/// [`read_config`] as UTF-8.
///
/// # Errors
/// As [`read_config`], and `InvalidData` when the bytes are not UTF-8.
pub(crate) fn read_config_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_config(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

fn read(path: &Path, cap: u64, follow: bool) -> io::Result<Vec<u8>> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|err| {
            // O_NOFOLLOW on a link fails with ELOOP, which reads as "too many levels of
            // symbolic links": say what it means here.
            if !follow && err.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link; state files are never read through one",
                )
            } else {
                err
            }
        })?;
    let meta = file.metadata()?;
    regular(&meta)?;
    if meta.len() > cap {
        return Err(too_large(cap));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while it is read: never read past the cap.
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(cap));
    }
    Ok(bytes)
}

/// Refuses anything but a regular file, naming what it is.
///
/// # Errors
/// `InvalidInput` for a FIFO, a device, a socket or a directory.
pub(crate) fn regular(meta: &fs::Metadata) -> io::Result<()> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

fn too_large(cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("is larger than {cap} bytes"),
    )
}

/// Replaces `path` with `bytes`: a new temporary file in the same directory, named
/// `.NAME.RANDOM.tmp` and created exclusively with mode 0600, is written, fsynced and renamed
/// over `path`; then the directory is fsynced. A crash leaves the old or the new file, never
/// a mix, and a link or file planted under any temporary name is never written through.
///
/// # Errors
/// When a step fails; the temporary file is then removed and `path` is unchanged.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let (temp, mut file) = create_temp(dir, &name.to_string_lossy())?;
    let written = (|| {
        file.write_all(bytes)?;
        // The data is on disk before the name points at it...
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    // ...and the rename itself survives a power cut.
    File::open(dir)?.sync_all()
}

/// Creates `.NAME.RANDOM.tmp` in `dir` with `O_CREAT | O_EXCL | O_NOFOLLOW`, retrying on the
/// (unlikely) collision with an existing name.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp = dir.join(format!(".{name}.{suffix}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shim-safe-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn links_devices_and_large_files_are_refused() {
        let d = dir("read");
        let file = d.join("f");
        fs::write(&file, b"hello").unwrap();
        assert_eq!(read_state(&file, 5).unwrap(), b"hello");
        assert!(read_state(&file, 4).is_err());
        let link = d.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let err = read_state(&link, 100).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(read_config(&link, 100).unwrap(), b"hello");
        let err = read_config(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(err.to_string().contains("a device"), "{err}");
        let err = read_config(&d, 100).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn writes_never_go_through_a_planted_link() {
        let d = dir("write");
        let victim = d.join("victim");
        fs::write(&victim, b"keep").unwrap();
        let target = d.join("state.json");
        std::os::unix::fs::symlink(&victim, d.join(".state.json.tmp")).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        let left: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".state.json.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        fs::remove_dir_all(&d).unwrap();
    }
}
