//! `use_subject_as_username` (issue 13): the client certificate's whole subject, written as
//! Mosquitto writes it (OpenSSL's RFC 2253 form: reversed, short names, escaped), is the
//! username, and an ACL keyed on it grants exactly that certificate its topics. The same
//! configuration, certificates and ACL run on pipit and on Mosquitto 2.0.11, driven by
//! `mosquitto_pub`/`mosquitto_sub` over TLS with client certificates. The certificates are
//! made at test time with `rcgen`.
#![cfg(feature = "tls")]
#![cfg(feature = "tls")]

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use mosquitto::{MosquittoSub, clients_installed, mosquitto_pub, pipit_and_mosquitto};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use support::Scratch;

/// The subject of `subject.crt` as Mosquitto makes it the username, written out by hand from
/// OpenSSL's rules (not by pipit's code): the last attribute first, the unknown OID 1.2.3.4
/// dumped in hex, `#` first and a space last escaped, `+` and `,` escaped, and the UTF-8 of
/// "Ō" as `\C5\8C`.
const SUBJECT: &str =
    r"1.2.3.4=#0C06637573746F6D,CN=sensor-7,OU=\#ops \+ eng\ ,O=Pipit\, Ltd,L=\C5\8Ctautahi,C=NZ";

/// Makes a CA, a server certificate for 127.0.0.1, and client certificates in `dir`:
/// `subject` (the subject above), and `intruder`, whose CN is the same `sensor-7` but whose
/// subject is not.
fn make_pki(dir: &Scratch) {
    let write = |name: &str, pem: String| std::fs::write(dir.path(name), pem).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "pipit subject test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    write("ca.crt", ca_cert.pem());

    let subject: Vec<(DnType, DnValue)> = vec![
        (
            DnType::CountryName,
            DnValue::PrintableString("NZ".try_into().unwrap()),
        ),
        (DnType::LocalityName, "Ōtautahi".into()),
        (DnType::OrganizationName, "Pipit, Ltd".into()),
        (DnType::OrganizationalUnitName, "#ops + eng ".into()),
        (DnType::CommonName, "sensor-7".into()),
        (DnType::CustomDnType(vec![1, 2, 3, 4]), "custom".into()),
    ];
    let intruder = vec![(DnType::CommonName, "sensor-7".into())];
    let server = vec![(DnType::CommonName, "localhost".into())];
    for (name, dn, purpose) in [
        ("server", server, ExtendedKeyUsagePurpose::ServerAuth),
        ("subject", subject, ExtendedKeyUsagePurpose::ClientAuth),
        ("intruder", intruder, ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let key = KeyPair::generate().unwrap();
        let sans = match name {
            "server" => vec!["localhost".to_string(), "127.0.0.1".to_string()],
            _ => Vec::new(),
        };
        let mut params = CertificateParams::new(sans).unwrap();
        // Not rcgen's default CN first: only the attributes listed, in order.
        params.distinguished_name = DistinguishedName::new();
        for (kind, value) in dn {
            params.distinguished_name.push(kind, value);
        }
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        write(&format!("{name}.crt"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
}

/// `mosquitto_pub`/`mosquitto_sub` TLS arguments: the CA, and the client certificate `cert`
/// (a name made by `make_pki`) or none.
fn tls_args(dir: &Scratch, cert: Option<&str>) -> Vec<String> {
    let path = |name: &str| dir.path(name).display().to_string();
    let mut args = vec!["--cafile".to_string(), path("ca.crt")];
    if let Some(cert) = cert {
        args.extend(["--cert".into(), path(&format!("{cert}.crt"))]);
        args.extend(["--key".into(), path(&format!("{cert}.key"))]);
    }
    args
}

/// Runs `mosquitto_pub` with `args` against `addr`; its exit code, the CONNACK code when the
/// connection is refused.
fn pub_exit_code(addr: SocketAddr, args: &[String]) -> i32 {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mosquitto_pub");
    out.status.code().unwrap_or(-1)
}

/// The configuration both brokers read: TLS with `dir`'s certificates, the subject as the
/// username, the ACL `acl`, and `require_certificate` as given.
fn config(dir: &Scratch, require_certificate: bool) -> String {
    let acl = dir.write(
        "acl",
        &format!("user {SUBJECT}\ntopic readwrite sensors/#\n"),
    );
    format!(
        "cafile {ca}\ncertfile {crt}\nkeyfile {key}\nrequire_certificate {require_certificate}\n\
         use_subject_as_username true\nallow_anonymous false\nacl_file {acl}\n",
        ca = dir.path("ca.crt").display(),
        crt = dir.path("server.crt").display(),
        key = dir.path("server.key").display(),
        acl = acl.display(),
    )
}

/// `tls_args` for `cert`, then `extra`.
fn args(dir: &Scratch, cert: Option<&str>, extra: &[&str]) -> Vec<String> {
    let mut args = tls_args(dir, cert);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Issue 13: on both brokers, the certificate whose subject the ACL names reads and writes
/// `sensors/#`, and a certificate with the same CN but another subject gets nothing.
#[test]
fn the_certificate_subject_is_the_username_as_mosquitto() {
    if !clients_installed("use_subject_as_username") {
        return;
    }
    let dir = Scratch::new("subject");
    make_pki(&dir);
    for peer in pipit_and_mosquitto(&dir, &config(&dir, true)) {
        let (addr, kind) = (peer.addr, peer.kind);
        let sub = |cert: &str, id: &str| {
            let args = args(&dir, Some(cert), &["-t", "sensors/#", "-q", "1", "-i", id]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            MosquittoSub::start(addr, &args)
        };
        let mut subject = sub("subject", "s");
        let mut intruder = sub("intruder", "i");
        // The intruder's publish is dropped; the subject's is delivered, to the subject only.
        let publish = |cert: &str, payload: &str| {
            let args = args(
                &dir,
                Some(cert),
                &["-t", "sensors/t", "-q", "1", "-m", payload],
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            mosquitto_pub(addr, &args, "");
        };
        publish("intruder", "forged");
        publish("subject", "21.5");
        let got = subject.collect(2, Duration::from_millis(700));
        let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
        assert_eq!(payloads, ["21.5"], "{kind:?}");
        let got = intruder.collect(1, Duration::from_millis(300));
        assert!(got.is_empty(), "{kind:?}: the intruder read {got:?}");
    }
}

/// Issue 13: where certificates are optional, a client without one is refused with "bad
/// username or password" (3.1.1 4, MQTT 5 0x86) on both brokers, whatever username it sends.
/// (Mosquitto does not ask for a certificate then, so it refuses every client; pipit asks,
/// and accepts a verified one.)
#[test]
fn no_certificate_is_a_bad_username_as_mosquitto() {
    if !clients_installed("use_subject_as_username") {
        return;
    }
    let dir = Scratch::new("subject-none");
    make_pki(&dir);
    for peer in pipit_and_mosquitto(&dir, &config(&dir, false)) {
        let (addr, kind) = (peer.addr, peer.kind);
        let login = ["-t", "sensors/t", "-m", "x", "-u", SUBJECT, "-P", "x"];
        assert_eq!(
            pub_exit_code(addr, &args(&dir, None, &login)),
            4,
            "{kind:?}"
        );
        let v5: Vec<&str> = ["-V", "5"].into_iter().chain(login).collect();
        assert_eq!(
            pub_exit_code(addr, &args(&dir, None, &v5)),
            0x86,
            "{kind:?}"
        );
    }
}
