//! `pipit passwd`: creates and edits Mosquitto password files with `mosquitto_passwd`'s
//! interface, so existing scripts keep working.
//!
//! `pipit passwd [-c | -D] [-b] FILE USER [PASSWORD]`: `-c` creates (or overwrites) FILE, `-D`
//! deletes USER, `-b` takes PASSWORD from the command line instead of asking twice on stdin.
//! Entries are written as `$7$` PBKDF2-SHA512 with 101 iterations and a fresh 12-byte salt.
//! Invariant: FILE is replaced atomically (a mode 0600 temporary file renamed over it), and
//! its other lines are kept as they were.

use crate::auth::password::{PBKDF2_ITERATIONS, SALT_LEN, hash_pbkdf2};
use std::fs::OpenOptions;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to call `pipit passwd`, shown with every usage error.
pub const USAGE: &str = "usage: pipit passwd [-c | -D] [-b] FILE USER [PASSWORD]\n  \
     -c  create FILE, overwriting it if it exists\n  \
     -D  delete USER from FILE\n  \
     -b  batch mode: PASSWORD is given on the command line";

/// Longest username or password: an MQTT string holds at most 65,535 bytes.
const MAX_LEN: usize = 65_535;

/// What one invocation asks for.
#[derive(Debug, PartialEq)]
struct Request {
    create: bool,
    delete: bool,
    file: PathBuf,
    username: String,
    /// The `-b` password.
    password: Option<String>,
}

impl Request {
    fn parse(args: &[String]) -> Result<Request, String> {
        let (mut create, mut delete, mut batch) = (false, false, false);
        let mut args = args.iter().map(String::as_str).peekable();
        while let Some(&flag) = args.peek().filter(|a| a.starts_with('-')) {
            args.next();
            match flag {
                "-c" => create = true,
                "-D" => delete = true,
                "-b" => batch = true,
                "-H" => match args.next() {
                    Some("sha512-pbkdf2") => {}
                    _ => return Err(format!("only -H sha512-pbkdf2 is supported\n{USAGE}")),
                },
                other => return Err(format!("unknown option {other}\n{USAGE}")),
            }
        }
        let rest: Vec<&str> = args.collect();
        let (file, username, password) = match (rest.as_slice(), batch && !delete) {
            ([file, user], false) => (file, user, None),
            ([file, user, password], true) => (file, user, Some(password.to_string())),
            _ => return Err(USAGE.to_string()),
        };
        if create && delete {
            return Err(format!("-c and -D cannot be used together\n{USAGE}"));
        }
        check_username(username)?;
        let (file, username) = (PathBuf::from(file), username.to_string());
        Ok(Request {
            create,
            delete,
            file,
            username,
            password,
        })
    }
}

fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > MAX_LEN {
        return Err(format!("username must be 1 to {MAX_LEN} bytes"));
    }
    if username.contains(':') || username.contains(char::is_control) {
        return Err("username must not contain ':' or control characters".to_string());
    }
    Ok(())
}

/// Runs `pipit passwd` with the arguments after `passwd`; the error is the message to print.
pub fn run(args: &[String]) -> Result<(), String> {
    let request = Request::parse(args)?;
    let entry = match (request.delete, &request.password) {
        (true, _) => None,
        (false, Some(password)) => Some(new_entry(password)?),
        (false, None) => {
            let _echo = EchoOff::new();
            let password = read_password(&mut io::stdin().lock(), &mut io::stderr())?;
            Some(new_entry(&password)?)
        }
    };
    let text = match request.create {
        true => String::new(),
        false => std::fs::read_to_string(&request.file)
            .map_err(|e| format!("{}: {e} (use -c to create it)", request.file.display()))?,
    };
    let text = edit(&text, &request.username, entry.as_deref())?;
    write_atomically(&request.file, &text)
}

/// A `$7$` hash of `password` with a fresh random salt.
fn new_entry(password: &str) -> Result<String, String> {
    if password.len() > MAX_LEN {
        return Err(format!("password must be at most {MAX_LEN} bytes"));
    }
    let mut salt = [0; SALT_LEN];
    getrandom::getrandom(&mut salt).map_err(|e| format!("cannot make a random salt: {e}"))?;
    Ok(hash_pbkdf2(password.as_bytes(), &salt, PBKDF2_ITERATIONS))
}

/// Asks for the password twice on `input`, prompting on `prompt`; they must match.
fn read_password(input: &mut dyn BufRead, prompt: &mut dyn Write) -> Result<String, String> {
    let mut ask = |question: &str| -> Result<String, String> {
        let io_error = |e: io::Error| format!("cannot read the password: {e}");
        write!(prompt, "{question}")
            .and_then(|()| prompt.flush())
            .map_err(io_error)?;
        let mut line = String::new();
        if input.read_line(&mut line).map_err(io_error)? == 0 {
            return Err("no password given".to_string());
        }
        writeln!(prompt).map_err(io_error)?;
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        Ok(line)
    };
    let first = ask("Password: ")?;
    if first.is_empty() {
        return Err("empty password".to_string());
    }
    match ask("Reenter password: ")? == first {
        true => Ok(first),
        false => Err("passwords do not match".to_string()),
    }
}

/// Turns terminal echo off while the password is typed, when stdin is a terminal.
struct EchoOff(bool);

impl EchoOff {
    fn new() -> EchoOff {
        let stty = |arg| {
            Command::new("stty")
                .arg(arg)
                .status()
                .is_ok_and(|s| s.success())
        };
        EchoOff(io::stdin().is_terminal() && stty("-echo"))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.0 {
            // Best effort: failing to restore echo must not hide the command's own result.
            let _ = Command::new("stty").arg("echo").status();
        }
    }
}

/// The password file `text` with `username`'s entry replaced, added, or (`None`) removed.
fn edit(text: &str, username: &str, entry: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 200);
    let mut found = false;
    for line in text.lines() {
        if line
            .split_once(':')
            .is_some_and(|(user, _)| user == username)
        {
            if let (false, Some(entry)) = (found, entry) {
                out.push_str(&format!("{username}:{entry}\n"));
            }
            found = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    match (found, entry) {
        (false, Some(entry)) => out.push_str(&format!("{username}:{entry}\n")),
        (false, None) => return Err(format!("user {username} not found")),
        (true, _) => {}
    }
    Ok(out)
}

/// Replaces `path` with `text`: written to a 0600 temporary file beside it, then renamed.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        // Best effort: the temporary file may not exist, and the write error is what matters.
        let _ = std::fs::remove_file(&temp);
        format!("{}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PasswordFile;
    use std::os::unix::fs::PermissionsExt;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A fresh path under the system temp directory, unique to this process and test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    fn run_ok(list: &[&str]) {
        run(&args(list)).unwrap();
    }

    #[test]
    fn create_add_update_delete() {
        let path = scratch("cycle.pw");
        let file = path.to_str().unwrap();
        run_ok(&["-c", "-b", file, "alice", "one"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        run_ok(&["-b", file, "bob", "two"]);
        run_ok(&["-b", file, "alice", "three"]);
        let pw = PasswordFile::load(&path).unwrap();
        assert!(pw.check("alice", b"three"));
        assert!(!pw.check("alice", b"one"));
        assert!(pw.check("bob", b"two"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .all(|l| l.split(':').nth(1).unwrap().starts_with("$7$101$"))
        );
        run_ok(&["-D", file, "alice"]);
        let pw = PasswordFile::load(&path).unwrap();
        assert!(!pw.check("alice", b"three"));
        assert!(pw.check("bob", b"two"));
        run_ok(&["-c", "-b", file, "carol", "four"]);
        assert!(!PasswordFile::load(&path).unwrap().check("bob", b"two"));
    }

    #[test]
    fn salts_are_random() {
        assert_ne!(new_entry("same").unwrap(), new_entry("same").unwrap());
    }

    #[test]
    fn errors_for_missing_file_and_user() {
        let path = scratch("missing.pw");
        let file = path.to_str().unwrap();
        assert!(
            run(&args(&["-b", file, "alice", "x"]))
                .unwrap_err()
                .contains("-c")
        );
        run_ok(&["-c", "-b", file, "alice", "x"]);
        assert!(
            run(&args(&["-D", file, "bob"]))
                .unwrap_err()
                .contains("not found")
        );
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["-c", "-D", "f", "u"][..],
            &["f"],
            &["-b", "f", "u"],
            &["f", "u", "password"],
            &["-D", "-b", "f", "u", "x"],
            &["-x", "f", "u"],
            &["-H", "sha512", "f", "u"],
            &["-b", "f", "a:b", "x"],
            &["-b", "f", "", "x"],
        ] {
            assert!(Request::parse(&args(bad)).is_err(), "{bad:?}");
        }
        let request = Request::parse(&args(&["-H", "sha512-pbkdf2", "-b", "f", "u", "p w"]));
        assert_eq!(request.unwrap().password.as_deref(), Some("p w"));
    }

    #[test]
    fn edit_keeps_other_lines_and_drops_duplicates() {
        let text = "# admins\nalice:old\nbob:keep\nalice:dup\n";
        assert_eq!(
            edit(text, "alice", Some("new")).unwrap(),
            "# admins\nalice:new\nbob:keep\n"
        );
        assert_eq!(edit(text, "alice", None).unwrap(), "# admins\nbob:keep\n");
        assert_eq!(edit("", "carol", Some("h")).unwrap(), "carol:h\n");
    }

    #[test]
    fn password_is_asked_twice() {
        let mut prompt = Vec::new();
        let read = |input: &str, prompt: &mut Vec<u8>| read_password(&mut input.as_bytes(), prompt);
        assert_eq!(read("pw\r\npw\n", &mut prompt).unwrap(), "pw");
        assert!(
            String::from_utf8(prompt.clone())
                .unwrap()
                .contains("Reenter password: ")
        );
        assert!(
            read("pw\npW\n", &mut prompt)
                .unwrap_err()
                .contains("do not match")
        );
        assert!(read("pw\n", &mut prompt).is_err());
        assert!(read("\n\n", &mut prompt).unwrap_err().contains("empty"));
    }

    /// Live interoperability when `mosquitto_passwd` is installed; the checked-in fixtures in
    /// `auth::password` cover the same formats when it is not.
    #[test]
    fn files_from_mosquitto_passwd_verify_and_stay_editable() {
        let tool = Path::new("/usr/bin/mosquitto_passwd");
        if !tool.exists() {
            return;
        }
        let path = scratch("mosquitto.pw");
        let file = path.to_str().unwrap();
        let made = Command::new(tool)
            .args(["-c", "-b", file, "mos", "quitto"])
            .status();
        assert!(made.unwrap().success());
        run_ok(&["-b", file, "pip", "it"]);
        let pw = PasswordFile::load(&path).unwrap();
        assert!(pw.check("mos", b"quitto"));
        assert!(pw.check("pip", b"it"));
    }
}
