//! A log line's timestamp, as Mosquitto writes it: seconds since the epoch, or the local time
//! through a `strftime` format (`log_timestamp_format`), `Time error` when that formats to
//! nothing. Local time comes from libc (`localtime_r`, `strftime`), so `TZ` and
//! `/etc/localtime` apply as they do to Mosquitto.

use std::ffi::CStr;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Mosquitto's line buffer: a timestamp longer than this formats as `Time error`.
const MAX_TIMESTAMP: usize = 1000;

/// Reads the time zone once, before any thread logs (`localtime_r` need not).
pub(super) fn init() {
    // SAFETY: tzset only reads TZ and the zone files into libc's own state.
    unsafe { tzset() };
}

unsafe extern "C" {
    /// POSIX `tzset(3)` (not bound by the libc crate on every target).
    fn tzset();
}

/// Appends the timestamp for now to `line`.
pub(super) fn push(line: &mut String, format: Option<&CStr>) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match format {
        None => {
            let _ = write!(line, "{secs}");
        }
        Some(format) => match local(format, secs) {
            Some(text) => line.push_str(&text),
            None => line.push_str("Time error"),
        },
    }
}

/// `secs` in local time through the `strftime` `format`; `None` if it formats to nothing.
pub(super) fn local(format: &CStr, secs: u64) -> Option<String> {
    // The type is `time_t`, inferred from `localtime_r`: the libc crate deprecates naming it
    // on musl (it is to become 64-bit there on 32-bit targets).
    let t = secs.try_into().ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // call, and a null return (no fill) is checked.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    let mut buf = vec![0u8; MAX_TIMESTAMP];
    // SAFETY: strftime writes at most `buf.len()` bytes into `buf` and returns how many,
    // 0 when the result did not fit; `format` is NUL-terminated.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm) };
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_the_local_time() {
        init();
        let format = c"%Y";
        let year = local(format, 1_700_000_000).unwrap();
        // 2023-11-14 in every time zone.
        assert_eq!(year, "2023");
        assert_eq!(local(c"", 0), None, "an empty result is Time error");
    }

    #[test]
    fn without_a_format_the_timestamp_is_epoch_seconds() {
        let mut line = String::new();
        push(&mut line, None);
        let secs: u64 = line.parse().unwrap();
        assert!(secs > 1_700_000_000);
    }
}
