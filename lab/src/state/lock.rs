//! The lab's lock, `up.lock` in its state directory: an exclusive `flock` held by the `up`
//! that is starting the lab (released by the kernel however that process ends) or by a
//! `down` tearing it down. The `up` writes its PID into the file, so that `down` can stop
//! it; a PID counts only while that process still has the file open.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::{LabDir, StateError, io};

impl LabDir {
    fn lock_path(&self) -> PathBuf {
        self.path.join("up.lock")
    }

    /// Takes the `up` lock: held (an open file with an exclusive `flock`) for as long as an
    /// `up` of this lab runs, released by the kernel when that process ends however it ends.
    /// The file names the holder's PID, so `down` can stop that `up` ([`LabDir::up_holder`]).
    pub fn lock_up(&self) -> Result<fs::File, StateError> {
        let path = self.lock_path();
        let mut file = fs::File::create(&path).map_err(io(&path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| io(&path)(e.into()))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(file)
    }

    /// Takes the same lock for `down` (the file is not rewritten); `None` while an `up`
    /// holds it.
    pub fn try_lock_down(&self) -> Result<Option<fs::File>, StateError> {
        let path = self.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(io(&path)(e.into())),
        }
    }

    /// The PID of the `up` holding the lock, as it wrote it, if that process still has the
    /// lock file open (a recycled PID does not).
    pub fn up_holder(&self) -> Option<u32> {
        let path = self.lock_path();
        let pid: u32 = fs::read_to_string(&path).ok()?.trim().parse().ok()?;
        let path = fs::canonicalize(&path).ok()?;
        let holds = fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path));
        holds.then_some(pid)
    }

    /// Whether an `up` of this lab is running right now (it holds the lock).
    pub fn up_in_progress(&self) -> bool {
        let Ok(file) = fs::File::open(self.lock_path()) else {
            return false;
        };
        let free =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok();
        !free
    }
}

#[cfg(test)]
mod tests {
    use crate::state::StateRoot;

    #[test]
    fn up_lock_is_seen_while_held_and_gone_after() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateRoot::at(tmp.path()).lab("a");
        dir.create().unwrap();
        assert!(!dir.up_in_progress());
        let lock = dir.lock_up().unwrap();
        assert!(dir.up_in_progress());
        assert_eq!(dir.up_holder(), Some(std::process::id()));
        assert!(dir.try_lock_down().unwrap().is_none(), "down waits for up");
        drop(lock);
        assert!(!dir.up_in_progress());
        assert_eq!(dir.up_holder(), None, "the PID no longer has the file open");
        let down = dir.try_lock_down().unwrap().expect("free once up is gone");
        assert!(dir.up_in_progress(), "down's lock keeps a new up out too");
        drop(down);
    }
}
