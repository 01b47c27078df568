//! Writing results safely. A file or folder is written complete under a temporary name in its
//! destination folder and only then renamed into place, so a reader never sees half a file; new files
//! are created exclusively, so a symlink planted under a name is never followed; file names made from
//! value names never collide; every error names the path and what was being written.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;

use crate::error::{Error, Result};

/// File names for values, unique within one folder. Characters other than ASCII letters, digits,
/// `_`, `-` and `.` become `_`; where two names would then meet (compared case-insensitively, for
/// case-insensitive file systems), the later one gets `-2`, `-3`, … So `a/b` and `a_b` get two files.
#[derive(Debug, Default)]
pub struct FileNames {
    used: HashSet<String>,
}

/// Longest name stem kept: file systems limit a name to 255 bytes.
const MAX_STEM: usize = 120;

impl FileNames {
    /// A fresh set of names for one folder.
    pub fn new() -> Self {
        FileNames::default()
    }

    /// A file name for value `name` with `extension`, unlike every name given out before.
    pub fn next(&mut self, name: &str, extension: &str) -> String {
        let mut stem: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
            .take(MAX_STEM)
            .collect();
        // "", "." and ".." are not names of new files.
        if stem.chars().all(|c| c == '.') {
            stem = format!("_{stem}");
        }
        let mut candidate = format!("{stem}.{extension}");
        let mut n = 1;
        while !self.used.insert(candidate.to_lowercase()) {
            n += 1;
            candidate = format!("{stem}-{n}.{extension}");
        }
        candidate
    }
}

/// Creates the folder `dir` (with its parents) when it is missing: the one rule for every output
/// folder (`optimize -o`, `run --out`, `study --out`).
pub fn create_folder(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), what: "folder".into(), source })
}

/// A path in `dir` that does not exist yet, named after `name`, created by `create` (which fails with
/// `AlreadyExists` when the candidate is taken).
fn fresh<T>(dir: &Path, name: &str, tag: &str, create: impl Fn(&Path) -> io::Result<T>) -> io::Result<(PathBuf, T)> {
    let pid = std::process::id();
    let mut n = 0u64;
    loop {
        let path = dir.join(format!(".{name}.{tag}-{pid}-{n}"));
        match create(&path) {
            Ok(made) => return Ok((path, made)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Creates `path`, which must not exist (so a symlink there is not followed), and fills it.
fn write_new(path: &Path, what: &str, fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> Result<()> {
    let error = |source| Error::Write { path: path.to_path_buf(), what: what.into(), source };
    let file = OpenOptions::new().write(true).create_new(true).open(path).map_err(error)?;
    let mut out = BufWriter::new(file);
    fill(&mut out).map_err(error)?;
    let file = out.into_inner().map_err(|e| error(e.into_error()))?;
    file.sync_all().map_err(error)
}

/// Writes `data` as a little-endian f32 `.npy` file at `path`, which must not exist yet.
pub fn write_npy_new(path: &Path, data: &ArrayD<f32>, what: &str) -> Result<()> {
    write_new(path, what, |out| data.write_npy(out).map_err(io::Error::other))
}

/// Replaces (or creates) the file at `path`: written complete under a temporary name beside it, then
/// renamed over it. A symlink at `path` is replaced, not followed.
pub fn replace_file(path: &Path, what: &str, fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> Result<()> {
    let mut staged = Staged::new(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    let temp = staged.file(file_name(path, what)?, what, fill)?;
    rename(&temp, path, what)?;
    staged.committed();
    Ok(())
}

/// Writes `text` to `path`, replacing any file there (see [`replace_file`]).
pub fn replace_text(path: &Path, text: &str, what: &str) -> Result<()> {
    replace_file(path, what, bytes(text.as_bytes()))
}

/// Writes `data` as a `.npy` file at `path`, replacing any file there (see [`replace_file`]).
pub fn replace_npy(path: &Path, data: &ArrayD<f32>, what: &str) -> Result<()> {
    replace_file(path, what, |out| data.write_npy(out).map_err(io::Error::other))
}

/// The last component of `path` as text.
pub(crate) fn file_name<'a>(path: &'a Path, what: &str) -> Result<&'a str> {
    path.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::Write {
        path: path.to_path_buf(),
        what: what.into(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path does not end in a file name"),
    })
}

/// Renames `from` to `to`, naming both in an error.
pub(crate) fn rename(from: &Path, to: &Path, what: &str) -> Result<()> {
    #[cfg(test)]
    if fail_rename::armed(what) {
        let source = io::Error::other("injected failure");
        return Err(Error::Write { path: to.to_path_buf(), what: what.into(), source });
    }
    fs::rename(from, to).map_err(|source| Error::Write {
        path: to.to_path_buf(),
        what: what.into(),
        source: io::Error::new(source.kind(), format!("renaming {} into place: {source}", from.display())),
    })
}

/// Removes a file or folder (a symlink itself, never what it points to).
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A failure injected into [`rename`] by unit tests, to interrupt a write at a chosen step.
#[cfg(test)]
pub(crate) mod fail_rename {
    use std::cell::Cell;

    thread_local!(static WHAT: Cell<Option<&'static str>> = const { Cell::new(None) });

    /// Renames of `what` ("model", "weights folder") fail on this thread from now on (`None`: none).
    pub(crate) fn set(what: Option<&'static str>) {
        WHAT.with(|w| w.set(what));
    }

    pub(super) fn armed(what: &str) -> bool {
        WHAT.with(|w| w.get() == Some(what))
    }
}

/// Temporary files and folders in one destination folder. Unless the write completes, they are removed
/// again and whatever was moved aside is put back in place, so a failed write leaves the previous
/// result as it was.
pub(crate) struct Staged {
    dir: PathBuf,
    /// Temporary files and folders written.
    paths: Vec<PathBuf>,
    /// What was moved aside: its place and its temporary name.
    aside: Vec<(PathBuf, PathBuf)>,
    done: bool,
}

impl Staged {
    /// Nothing staged yet in `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        Staged { dir: dir.to_path_buf(), paths: Vec::new(), aside: Vec::new(), done: false }
    }

    /// A new temporary file for `name`, filled.
    pub(crate) fn file(
        &mut self,
        name: &str,
        what: &str,
        fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> Result<PathBuf> {
        let open = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p);
        let (path, file) = fresh(&self.dir, name, "tmp", open).map_err(|source| Error::Write {
            path: self.dir.join(name),
            what: what.into(),
            source,
        })?;
        self.paths.push(path.clone());
        let error = |source| Error::Write { path: path.clone(), what: what.into(), source };
        let mut out = BufWriter::new(file);
        fill(&mut out).and_then(|()| out.flush()).map_err(error)?;
        out.get_ref().sync_all().map_err(error)?;
        Ok(path)
    }

    /// A new, empty temporary folder for `name`.
    pub(crate) fn folder(&mut self, name: &str, what: &str) -> Result<PathBuf> {
        let (path, ()) = fresh(&self.dir, name, "tmp", |p| fs::create_dir(p)).map_err(|source| Error::Write {
            path: self.dir.join(name),
            what: what.into(),
            source,
        })?;
        self.paths.push(path.clone());
        Ok(path)
    }

    /// Moves whatever is at `path` aside to a temporary name (removed with the rest), if anything is.
    pub(crate) fn move_aside(&mut self, path: &Path, what: &str) -> Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let name = file_name(path, what)?;
        let (aside, ()) = fresh(&self.dir, name, "old", |p| match fs::symlink_metadata(p) {
            Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
            Err(_) => fs::rename(path, p),
        })
        .map_err(|source| Error::Write { path: path.to_path_buf(), what: what.into(), source })?;
        self.aside.push((path.to_path_buf(), aside));
        Ok(())
    }

    /// The write completed: what was renamed into place stays; what was moved aside goes.
    pub(crate) fn committed(&mut self) {
        self.done = true;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Best effort: a leftover temporary name is harmless, it is never read.
        for path in &self.paths {
            let _ = remove(path);
        }
        for (place, aside) in self.aside.iter().rev() {
            if self.done {
                let _ = remove(aside);
            } else {
                // Whatever this write already renamed into the place goes; the previous one returns.
                let _ = remove(place).and_then(|()| fs::rename(aside, place));
            }
        }
    }
}

/// Writes `bytes` to `out` (for [`replace_file`] and [`Staged::file`] callers holding text).
fn bytes(bytes: &[u8]) -> impl FnOnce(&mut BufWriter<File>) -> io::Result<()> + '_ {
    move |out| out.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_never_collide() {
        let mut names = FileNames::new();
        let got: Vec<String> =
            ["a/b", "a_b", "A_B", "a\\b", "..", "", "w", "w-2"].iter().map(|n| names.next(n, "npy")).collect();
        assert_eq!(got, ["a_b.npy", "a_b-2.npy", "A_B-3.npy", "a_b-4.npy", "_...npy", "_.npy", "w.npy", "w-2.npy"]);
        let long = names.next(&"x".repeat(1000), "npy");
        assert_eq!(long.len(), MAX_STEM + 4);
    }

    #[test]
    fn replace_file_writes_whole_files_and_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        replace_text(&path, "one", "text").unwrap();
        replace_text(&path, "two", "text").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim.txt");
            fs::write(&victim, "keep").unwrap();
            let link = dir.path().join("link.txt");
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            replace_text(&link, "new", "text").unwrap();
            assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
            assert_eq!(fs::read_to_string(&link).unwrap(), "new");
            assert!(!fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        }
        // Nothing temporary is left behind.
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn errors_name_the_path_and_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/out.npy");
        let err = replace_npy(&missing, &ArrayD::zeros(vec![2]), "output `y`").unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot write output `y` {}", missing.display())), "{err}");
    }
}
