//! Switching away from root (`user`), as Mosquitto 2.0's `drop_privileges` does it, for the
//! `pipit` binary (the library never switches users):
//!
//! - not running as root (effective uid not 0): nothing happens, whatever `user` says;
//! - `user root`: pipit stays root (and warns, as Mosquitto);
//! - `user mosquitto`, the default: that user, or `nobody` if there is no `mosquitto` user;
//! - any other name: that user; one that does not exist stops start-up.
//!
//! The switch sets the supplementary groups (`initgroups`), the group and then the user, so
//! it cannot be undone. The binary makes it after binding the listeners and opening the log
//! file, the pid file and the store, so ports below 1024 and root-owned log directories keep
//! working (Mosquitto 2.0 switches before opening any of them).

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;

/// The account pipit switches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its user name.
    pub name: String,
    /// Its user id.
    pub uid: libc::uid_t,
    /// Its primary group id.
    pub gid: libc::gid_t,
}

/// Mosquitto's default user, and the fallback when it does not exist.
const DEFAULT_USER: &str = "mosquitto";
const FALLBACK_USER: &str = "nobody";

/// The account to switch to for `user` (`Config::user`): `Ok(None)` when there is nothing to
/// do (not root, or `user root`); an error when the user does not exist. A missing
/// `mosquitto` user falls back to `nobody`, with a warning.
pub fn target(user: &str) -> Result<Option<Account>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || user == "root" {
        return Ok(None);
    }
    if let Some(account) = lookup(user)? {
        return Ok(Some(account));
    }
    if user != DEFAULT_USER {
        return Err(format!(
            "unable to drop privileges to '{user}' because this user does not exist"
        ));
    }
    log::warn!(
        "unable to drop privileges to '{user}' because this user does not exist; \
         trying '{FALLBACK_USER}' instead"
    );
    match lookup(FALLBACK_USER)? {
        Some(account) => Ok(Some(account)),
        None => Err(format!("unable to drop privileges to '{FALLBACK_USER}'")),
    }
}

/// Switches the process to `account`: supplementary groups, group, then user.
pub fn switch(account: &Account) -> io::Result<()> {
    let name = CString::new(account.name.as_str())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name has a NUL"))?;
    let step = |what: &str, rc: libc::c_int| {
        if rc == -1 {
            let e = io::Error::last_os_error();
            Err(io::Error::new(
                e.kind(),
                format!(
                    "error setting {what} whilst dropping privileges to '{}': {e}",
                    account.name
                ),
            ))
        } else {
            Ok(())
        }
    };
    // SAFETY: plain system calls on ids and a NUL-terminated name.
    step("groups", unsafe {
        libc::initgroups(name.as_ptr(), account.gid)
    })?;
    step("gid", unsafe { libc::setgid(account.gid) })?;
    step("uid", unsafe { libc::setuid(account.uid) })?;
    Ok(())
}

/// Whether the process is still root after the switch (`user root`), which Mosquitto warns of.
pub fn is_root() -> bool {
    // SAFETY: geteuid and getegid have no preconditions.
    unsafe { libc::geteuid() == 0 || libc::getegid() == 0 }
}

/// Gives `dir` and the entries directly in it to `account` (for a store directory pipit
/// created itself at this start, as root, before switching).
pub fn give(dir: &Path, account: &Account) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        std::os::unix::fs::lchown(&path, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

/// Whether the process may create and remove files in `dir`.
pub fn can_write(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access reads a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// `name`'s account from the user database (`getpwnam_r`), `None` if there is none.
fn lookup(name: &str) -> Result<Option<Account>, String> {
    let c_name = CString::new(name).map_err(|_| format!("user name {name:?} has a NUL"))?;
    let mut size = 1024;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: `pwd` is plain data getpwnam_r fills in, with strings pointing into `buf`,
        // which outlives every read of them below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 {
            let e = io::Error::from_raw_os_error(rc);
            return Err(format!("cannot look up user '{name}': {e}"));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_name points to a NUL-terminated string in `buf`.
        let found = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Ok(Some(Account {
            name: found.to_string_lossy().into_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_a_made_up_user_does_not() {
        let root = lookup("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup("pipit-no-such-user").unwrap(), None);
    }

    #[test]
    fn user_root_and_non_root_do_nothing() {
        assert_eq!(target("root"), Ok(None));
        if !is_root() {
            assert_eq!(target("pipit-no-such-user"), Ok(None));
        } else {
            let e = target("pipit-no-such-user").unwrap_err();
            assert!(e.contains("'pipit-no-such-user' because this user does not exist"));
        }
    }
}
