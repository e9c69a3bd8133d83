//! [`Recovery`]: what opening a store found, for the one line the broker logs at start-up
//! and the warning lines that name every problem.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What recovery found and did when the store was opened.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The store directory.
    pub dir: PathBuf,
    /// The directory was empty and has been made a store.
    pub created: bool,
    /// The snapshot whose records came first (its file name), if any.
    pub snapshot: Option<String>,
    /// Log segments read after it.
    pub segments: u32,
    /// Valid records handed to the caller.
    pub records: u64,
    /// Their framed size in bytes.
    pub bytes: u64,
    /// The torn tail cut off the last segment (an interrupted write), if any.
    pub torn: Option<Torn>,
    /// Records dropped for a bad CRC whose length was intact.
    pub skipped_records: u64,
    /// Every damaged byte dropped, inside or outside such records (the torn tail excepted).
    pub skipped_bytes: u64,
    /// Files renamed aside as damaged by this open (their valid records were carried over).
    pub quarantined: Vec<String>,
    /// Damaged files kept aside by earlier starts (`*.corrupt-*`), left as they are.
    pub kept_aside: u32,
    /// Files removed: interrupted snapshots or copies, files a snapshot made redundant.
    pub removed: Vec<String>,
    /// How long recovery took.
    pub elapsed: Duration,
    pub(super) problems: Vec<String>,
}

/// An incomplete write cut off the end of the last log segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torn {
    /// The segment's file name.
    pub file: String,
    /// Where the cut was made (the end of its last valid record).
    pub offset: u64,
    /// Bytes cut off.
    pub bytes: u64,
}

impl Recovery {
    /// One line per problem found (damage skipped, files set aside, gaps, strangers in the
    /// directory), for the broker to log as warnings. Empty after a clean shutdown.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_millis();
        if self.created {
            return write!(f, "persistence: created store {}", self.dir.display());
        }
        write!(
            f,
            "persistence: recovered {} records ({} bytes) from {}",
            self.records,
            self.bytes,
            self.dir.display()
        )?;
        match &self.snapshot {
            Some(name) => write!(f, " ({name} + {} log segments)", self.segments)?,
            None => write!(f, " ({} log segments)", self.segments)?,
        }
        write!(f, " in {ms} ms")?;
        if let Some(torn) = &self.torn {
            write!(f, "; torn tail of {} bytes truncated", torn.bytes)?;
        }
        if self.skipped_bytes > 0 {
            write!(
                f,
                "; {} corrupt records and {} bytes skipped",
                self.skipped_records, self.skipped_bytes
            )?;
        }
        if !self.quarantined.is_empty() {
            write!(f, "; {} damaged files kept aside", self.quarantined.len())?;
        }
        Ok(())
    }
}
