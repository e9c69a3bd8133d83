#!/usr/bin/env python3
"""Runs the real-world mosquitto.conf corpus (tests/configs/real/, sources in SOURCES.md) on
pipit and on Mosquitto 2.0.11, and checks, for each file, that the broker starts, that pipit
logs no warning that changes behaviour, and that a publish/subscribe round trip with the
file's credentials works. Prints a table and a count; exits non-zero on any outcome that
differs from EXPECTED below (a file that now passes included: update the table).

Each file is rewritten only where it must be to run here, into a temporary directory:
- every `listener PORT [ADDRESS]` becomes `listener FREE_PORT 127.0.0.1` (each port of the
  file its own free loopback port; a `port N` line becomes `port FREE_PORT` plus
  `bind_address 127.0.0.1`): nothing listens beyond loopback, nothing clashes;
- a file with no listener at all (Mosquitto's "local only" mode: loopback 1883, anonymous
  clients allowed) gets `port FREE_PORT` and `bind_address 127.0.0.1` at its end (so the
  options before them still apply to that default listener) and, unless it sets it,
  `allow_anonymous true`, which is what that mode means;
- a file with a listener that was not on loopback and no `allow_anonymous` gets
  `allow_anonymous false` at its end: what both brokers do for it as written anyway;
- paths: `persistence_location`, `log_dest file`, `pid_file`, `include_dir` (an empty
  directory) go to the temporary directory; `password_file` and `acl_file` become files
  generated there (user `pipit-test`, password `secret`; the ACL grants that user and
  anonymous clients `test/#`); `certfile`, `keyfile`, `cafile` and `capath` become a test CA
  and a server certificate for 127.0.0.1 made with the openssl command (`capath`: a
  directory holding only the CA certificate, as /etc/ssl/certs holds only certificates).
Everything else, `user` lines included, is left as written. Mosquitto (root here) drops to
`user mosquitto` when a file says so, so the temporary files are world-readable.

pipit warnings that do not change behaviour (HARMLESS) are not counted: "should not be run as
root" (a file that says `user root`; Mosquitto warns the same). pipit's warnings are read from
its stderr and, for a file with `log_dest file`, from that file.

Environment: PIPIT (default target/debug/pipit, built if missing), MOSQUITTO
(/usr/sbin/mosquitto; without it only pipit runs).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "configs" / "real"
PIPIT = Path(os.environ.get("PIPIT", ROOT / "target" / "debug" / "pipit"))
MOSQUITTO = Path(os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto"))
USER, PASSWORD = "pipit-test", "secret"

# Warnings that change nothing a client sees (module doc).
HARMLESS = [r"should not be run as root"]

# Expected outcome per file, for (pipit, Mosquitto): "pass", or the reason it fails today.
# When a feature lands and a file starts to pass, this table must change with it.
PLUGIN = "auth_plugin: C plugins cannot be loaded, refused by design"
NO_PLUGIN = "the plugin .so is not installed here"
ANONYMOUS = "no credentials and anonymous clients refused (written for Mosquitto 1.x)"
EXPECTED = {
    "mosquitto-2.0.11-example.conf": ("pass", "pass"),
    "mosquitto-docker-no-auth.conf": ("pass", "pass"),
    "mosquitto-snap-default.conf": ("pass", "pass"),
    "ha-addon-legacy.conf": ("pass", "pass"),
    "ha-addon-tempio.conf": (PLUGIN, NO_PLUGIN),
    "chirpstack-docker.conf": (PLUGIN, NO_PLUGIN),
    "victron-venus.conf": (ANONYMOUS, ANONYMOUS),
    "openwb-mosquitto.conf": ("pass", "pass"),
    "openwb-public.conf": ("pass", "pass"),
    "openwb-local-bridge.conf": ("pass", "pass"),
    "owntracks-quicksetup.conf": ("pass", "pass"),
    "k8s-at-home-helm.conf": ("pass", "pass"),
    "mov-plataform.conf": ("pass", "pass"),
    "server-configs-4cello.conf": ("pass", "pass"),
    "atnog-indoor-location.conf": ("pass", "pass"),
    "agidomouve-home-server.conf": ("pass", "pass"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(tmp):
    """A CA and a server certificate for 127.0.0.1, in tmp/pki (also a capath directory)."""
    pki = tmp / "pki"
    pki.mkdir()

    def run(*args):
        subprocess.run(args, cwd=pki, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=corpus CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (pki / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.crt")
    # A directory of CA certificates only, as /etc/ssl/certs is.
    (pki / "capath").mkdir()
    shutil.copy(pki / "ca.crt", pki / "capath" / "corpus-ca.pem")
    return pki


def password_file(tmp):
    path = tmp / "passwd"
    subprocess.run([str(PIPIT), "passwd", "-c", "-b", str(path), USER, PASSWORD], check=True,
                   capture_output=True)
    return path


def rewrite(text, tmp, ports):
    """The file as it runs here (module doc); `ports` maps the file's ports to free ones and
    collects the plain MQTT ones (for the round trip) in ports["mqtt"]."""
    out, has_listener, sets_anonymous, loopback_only = [], False, False, True
    current = None  # the listener block being read: its free port
    for raw in text.splitlines():
        words = raw.split()
        name = words[0] if words and not words[0].startswith("#") else ""
        value = raw.strip()[len(name):].strip()
        if name == "listener":
            has_listener = True
            loopback_only &= words[2:3] in (["127.0.0.1"], ["localhost"], ["::1"])
            port = ports.setdefault(words[1], free_port())
            current = port
            ports["mqtt"].append(port)
            out.append(f"listener {port} 127.0.0.1")
        elif name == "port":
            has_listener = True
            loopback_only = False
            port = ports.setdefault(words[1], free_port())
            ports["mqtt"].insert(0, port)
            out += [f"port {port}", "bind_address 127.0.0.1"]
        elif name == "protocol" and words[1:2] == ["websockets"] and current in ports["mqtt"]:
            ports["mqtt"].remove(current)
            out.append(raw)
        elif name in ("certfile", "keyfile", "cafile", "capath"):
            pki = tmp / "pki"
            target = {"certfile": pki / "server.crt", "keyfile": pki / "server.key",
                      "cafile": pki / "ca.crt", "capath": pki / "capath"}[name]
            if current in ports["mqtt"]:
                ports["mqtt"].remove(current)  # a TLS listener: the round trip uses plain ones
            out.append(f"{name} {target}")
        elif name == "persistence_location":
            out.append(f"persistence_location {tmp / 'data'}/")
        elif name == "log_dest" and words[1:2] == ["file"]:
            out.append(f"log_dest file {tmp / 'log' / 'broker.log'}")
        elif name == "pid_file":
            out.append(f"pid_file {tmp / 'broker.pid'}")
        elif name == "include_dir":
            out.append(f"include_dir {tmp / 'include'}")
        elif name == "password_file":
            out.append(f"password_file {tmp / 'passwd'}")
        elif name == "acl_file":
            out.append(f"acl_file {tmp / 'acl'}")
        else:
            if name == "allow_anonymous":
                sets_anonymous = True
            out.append(raw)
    if not has_listener:
        port = free_port()
        ports["mqtt"].append(port)
        out += [f"port {port}", "bind_address 127.0.0.1"]
        if not sets_anonymous:
            out.append("allow_anonymous true")
    elif not sets_anonymous and not loopback_only:
        out.append("allow_anonymous false")
    return "\n".join(out) + "\n"


def wait_listening(proc, port, deadline=8.0):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def round_trip(port, credentials):
    auth = ["-u", USER, "-P", PASSWORD] if credentials else []
    base = ["-h", "127.0.0.1", "-p", str(port)] + auth
    sub = subprocess.Popen(["mosquitto_sub", *base, "-t", "test/corpus", "-C", "1", "-W", "5",
                            "-q", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    pub = subprocess.run(["mosquitto_pub", *base, "-t", "test/corpus", "-m", "hello", "-q", "1"],
                         capture_output=True, text=True)
    out, err = sub.communicate(timeout=10)
    if pub.returncode != 0:
        return f"publish failed ({pub.returncode}): {pub.stderr.strip()}"
    if out.strip() != "hello":
        return f"subscriber got {out.strip()!r} ({err.strip()})"
    return None


def run_one(kind, conf_text, tmp, ports, credentials):
    """Starts one broker on the rewritten file: 'pass' or why not."""
    conf = tmp / f"{kind}.conf"
    conf.write_text(conf_text)
    conf.chmod(0o644)
    log = open(tmp / f"{kind}.log", "w")
    cmd = [str(PIPIT), "-c", str(conf)] if kind == "pipit" else [str(MOSQUITTO), "-c", str(conf)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={k: v for k, v in os.environ.items() if k != "RUST_LOG"})
    try:
        if not ports["mqtt"] or not wait_listening(proc, ports["mqtt"][0]):
            text = (tmp / f"{kind}.log").read_text()
            lines = [l for l in text.splitlines() if "ERROR" in l or "rror" in l][:1]
            return "does not start: " + (lines[0].strip() if lines else text.strip()[-200:])
        problems = []
        if kind == "pipit":
            time.sleep(0.1)
            # With `log_dest file`, warnings go to the file (rewritten into tmp/log).
            logged = (tmp / "pipit.log").read_text()
            if (tmp / "log" / "broker.log").exists():
                logged += (tmp / "log" / "broker.log").read_text()
            for line in logged.splitlines():
                if "Warning: " in line and not any(re.search(h, line) for h in HARMLESS):
                    problems.append("warns: " + line.split("Warning: ", 1)[-1])
        failure = round_trip(ports["mqtt"][0], credentials)
        if failure:
            problems.append("round trip: " + failure)
        return "pass" if not problems else "; ".join(problems)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def prepare(tmp):
    tmp.chmod(0o755)
    for sub in ("data", "log", "include"):
        (tmp / sub).mkdir()
        (tmp / sub).chmod(0o777)
    make_pki(tmp)
    password_file(tmp).chmod(0o644)
    (tmp / "acl").write_text(f"topic readwrite test/#\nuser {USER}\ntopic readwrite test/#\n")
    (tmp / "acl").chmod(0o644)
    for path in (tmp / "pki").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tmp / "pki").chmod(0o755)


# What the broker's own output must show for each expected failure, so a file that fails for
# another reason is an unexpected outcome too.
EVIDENCE = {
    PLUGIN: r"auth_plugin: ",
    NO_PLUGIN: r"(?i)plugin",
    ANONYMOUS: r"not authori[sz]ed",
}


def matches(expected, actual):
    """Whether `actual` is the outcome `expected` describes (module doc)."""
    if expected == "pass" or actual == "pass":
        return expected == actual
    return all(re.search(EVIDENCE[reason], actual) for reason in expected.split("; "))


def main():
    if not PIPIT.exists():
        subprocess.run(["cargo", "build", "--bin", "pipit"], cwd=ROOT, check=True)
    have_mosquitto = MOSQUITTO.exists()
    if not have_mosquitto:
        print(f"notice: {MOSQUITTO} is not installed; running pipit only")
    files = sorted(CORPUS.glob("*.conf"))
    missing = set(EXPECTED) ^ {f.name for f in files}
    if missing:
        print(f"EXPECTED and tests/configs/real/ differ: {sorted(missing)}")
        return 1
    rows, unexpected, passes = [], 0, {"pipit": 0, "mosquitto": 0}
    for path in files:
        expected = dict(zip(("pipit", "mosquitto"), EXPECTED[path.name]))
        text = path.read_text()
        credentials = re.search(r"^\s*password_file\s", text, re.M) is not None
        results = {}
        for kind in ("pipit", "mosquitto"):
            if kind == "mosquitto" and not have_mosquitto:
                continue
            tmp = Path(tempfile.mkdtemp(prefix=f"pipit-corpus-{kind}-"))
            try:
                prepare(tmp)
                ports = {"mqtt": []}
                results[kind] = run_one(kind, rewrite(text, tmp, ports), tmp, ports, credentials)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        cells = []
        for kind in ("pipit", "mosquitto"):
            if kind not in results:
                cells.append("skipped")
                continue
            actual, wanted = results[kind], expected[kind]
            passes[kind] += actual == "pass"
            if matches(wanted, actual):
                cells.append("pass" if actual == "pass" else f"expected failure: {wanted}")
            else:
                unexpected += 1
                cells.append(f"UNEXPECTED (expected {wanted}): {actual}")
        rows.append((path.name, *cells))
    print("| file | pipit | Mosquitto 2.0.11 |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    print()
    print(f"pipit: {passes['pipit']} of {len(files)} files pass; "
          f"Mosquitto: {passes['mosquitto']} of {len(files)}; unexpected outcomes: {unexpected}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
