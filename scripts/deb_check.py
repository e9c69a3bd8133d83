#!/usr/bin/env python3
"""Installs the amd64 Debian package (scripts/deb.sh builds it if missing) on this machine
and checks it as a user would, without systemd (CI has none): `dpkg -i`; the `pipit` user,
/var/lib/pipit and the files are in place; the installed binary started as root with the
installed configuration, plus one drop-in in /etc/pipit/conf.d (a free loopback port with
anonymous clients, so the check never depends on port 1883 being free), reports READY=1,
WATCHDOG=1 and STOPPING=1 to a test notify socket as it would to systemd, switches to the
`pipit` user, creates its store in /var/lib/pipit, and passes a QoS 1 message from
mosquitto_pub to mosquitto_sub; then `dpkg -r` leaves only the conffile and `dpkg -P` removes
that too. Exits non-zero on the first failure. Needs root (dpkg).

Environment: CARGO_TARGET_DIR (default target).
"""

import os
import pwd
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DROP_IN = Path("/etc/pipit/conf.d/deb-check.conf")


def fail(message, log=None):
    print(f"FAIL: {message}")
    if log and Path(log).exists():
        print("--- broker log")
        print(Path(log).read_text()[-2000:])
    sys.exit(1)


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def package():
    version = next(line.split('"')[1] for line in (ROOT / "Cargo.toml").read_text().splitlines()
                   if line.startswith("version = "))
    deb = TARGET / "deb" / f"pipit_{version}-1_amd64.deb"
    if not deb.exists():
        run(str(ROOT / "scripts" / "deb.sh"), env={**os.environ, "DEB_ARCHES": "amd64"})
    return deb


def installed():
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "pipit"], capture_output=True,
                         text=True).stdout
    return "install ok installed" in out


def recv_until(sock, prefix, deadline, log):
    end = time.time() + deadline
    while time.time() < end:
        sock.settimeout(max(0.05, end - time.time()))
        try:
            text = sock.recv(512).decode()
        except socket.timeout:
            break
        if text.startswith(prefix):
            return text
    fail(f"no {prefix!r} on the notify socket", log)


def main():
    if os.geteuid() != 0:
        print("deb_check.py: needs root (dpkg -i); skipped")
        return 0
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            run("apt-get", "install", "-y", "-qq", "mosquitto-clients")
    deb = package()
    if installed():
        run("dpkg", "-P", "pipit")
    run("dpkg", "-i", str(deb))
    print(f"ok: dpkg -i {deb.name}")
    for path in ("/usr/sbin/pipit", "/lib/systemd/system/pipit.service",
                 "/etc/pipit/pipit.conf", "/usr/share/doc/pipit/README.md"):
        if not Path(path).exists():
            fail(f"{path} not installed")
    user = pwd.getpwnam("pipit")
    if Path("/var/lib/pipit").stat().st_uid != user.pw_uid:
        fail("/var/lib/pipit is not pipit's")
    print(f"ok: files, user pipit (uid {user.pw_uid}), /var/lib/pipit")

    work = Path(tempfile.mkdtemp(prefix="pipit-deb-"))
    work.chmod(0o755)
    notify_path = work / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify_path.chmod(0o777)  # pipit writes to it after switching to its user, as to systemd's
    port = free_port()
    DROP_IN.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    log = work / "broker.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOTIFY_SOCKET": str(notify_path),
           "WATCHDOG_USEC": "400000"}
    with open(log, "w") as out:
        broker = subprocess.Popen(["/usr/sbin/pipit", "-c", "/etc/pipit/pipit.conf"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        ready = recv_until(notify, "READY=1", 10, log)
        print(f"ok: {ready.splitlines()[0]} ({ready.splitlines()[-1]})")
        recv_until(notify, "WATCHDOG=1", 5, log)
        print("ok: WATCHDOG=1 from the loop")
        status = Path(f"/proc/{broker.pid}/status").read_text()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        if int(uid) != user.pw_uid:
            fail(f"still running as uid {uid}", log)
        store = Path("/var/lib/pipit/pipit.db.pipit")
        if not store.is_dir() or store.stat().st_uid != user.pw_uid:
            fail(f"{store} missing or not pipit's", log)
        print(f"ok: running as pipit, store {store}")
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t",
                                "deb/check", "-q", "1", "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "deb/check", "-q", "1",
            "-m", "installed")
        got, _ = sub.communicate(timeout=15)
        if got.strip() != "installed":
            fail(f"subscriber got {got.strip()!r}", log)
        print("ok: QoS 1 round trip through the installed broker")
        broker.terminate()
        recv_until(notify, "STOPPING=1", 10, log)
        if broker.wait(timeout=10) != 0:
            fail(f"exit status {broker.returncode}", log)
        print("ok: STOPPING=1, clean exit")
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait()
        DROP_IN.unlink(missing_ok=True)
        notify.close()
        for f in work.iterdir():
            f.unlink()
        work.rmdir()

    run("dpkg", "-r", "pipit")
    if Path("/usr/sbin/pipit").exists() or not Path("/etc/pipit/pipit.conf").exists():
        fail("dpkg -r: the binary should be gone and the conffile kept")
    run("dpkg", "-P", "pipit")
    for path in ("/etc/pipit", "/var/lib/pipit", "/lib/systemd/system/pipit.service"):
        if Path(path).exists():
            fail(f"dpkg -P left {path}")
    print("ok: dpkg -r keeps the conffile, dpkg -P removes it and the store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
