//! A test PKI made at test time with `rcgen`, as PEM files the broker loads like any user's:
//! a CA, a server certificate for 127.0.0.1 and localhost, client certificates with CNs
//! `sensor-7` and `intruder`, a second CA that signed none of them (`rogue-ca.crt`), and a
//! server certificate from the CA for another name only (`elsewhere`, SAN
//! `broker.invalid`). All keys are P-256. Generated in-process, so the tests need no
//! `openssl` command.
//! Included with `#[path = "common/pki.rs"] mod pki;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pipit::config::TlsConfig;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Where the PKI's files are.
pub struct Pki {
    /// The directory holding them.
    pub dir: PathBuf,
}

impl Pki {
    /// The file `name` (e.g. `ca.crt`, `sensor.key`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The contents of file `name`.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read PEM file")
    }

    /// Listener TLS settings with this PKI's server certificate and CA.
    pub fn tls(&self, require_certificate: bool, use_identity_as_username: bool) -> TlsConfig {
        TlsConfig {
            certfile: self.path("server.crt"),
            keyfile: self.path("server.key"),
            cafile: Some(self.path("ca.crt")),
            capath: None,
            require_certificate,
            use_identity_as_username,
            use_subject_as_username: false,
            min_version: None,
        }
    }
}

/// A self-signed CA named `cn`.
fn ca(cn: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.self_signed(&key).unwrap(), key)
}

/// Makes the PKI once per test binary, under target/tmp (remade on each run, one directory
/// per test binary so binaries running at once do not race).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tls-pki-{}", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();

        let (ca_cert, ca_key) = ca("pipit test CA");
        write("ca.crt", ca_cert.pem());
        write("rogue-ca.crt", ca("some other CA").0.pem());

        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        let local = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        for (name, cn, purpose, sans) in [
            ("server", "localhost", server.clone(), local),
            (
                "elsewhere",
                "broker.invalid",
                server,
                vec!["broker.invalid".into()],
            ),
            ("sensor", "sensor-7", client.clone(), Vec::new()),
            ("intruder", "intruder", client, Vec::new()),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            write(&format!("{name}.crt"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    })
}
