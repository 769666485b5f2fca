//! Certificates made at test time (rcgen): a CA, a server certificate it signed for `localhost`
//! and `127.0.0.1`, one for another host name, a client certificate for mutual TLS, and a second
//! CA that signed none of them. Written as PEM files into a folder of their own; PostgreSQL
//! wants its key file mode 0600.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files of one test PKI.
pub struct TestCerts {
    dir: tempfile::TempDir,
}

impl TestCerts {
    pub fn new() -> Self {
        let dir = super::temp_dir("certs-");
        let certs = Self { dir };
        let ca = make_ca("session-server test CA");
        certs.write("ca.pem", &ca.pem());
        let other = make_ca("another CA");
        certs.write("other-ca.pem", &other.pem());
        let server_key = KeyPair::generate().expect("key");
        // Also a client certificate: cluster nodes and replicas show it to each other.
        let server = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
        .signed_by(&server_key, &ca)
        .expect("server certificate");
        certs.write("server.pem", &server.pem());
        certs.write("server.key", &server_key.serialize_pem());
        let elsewhere_key = KeyPair::generate().expect("key");
        let elsewhere = leaf(
            vec!["elsewhere.test".into()],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )
        .signed_by(&elsewhere_key, &ca)
        .expect("certificate for another host");
        certs.write("elsewhere.pem", &elsewhere.pem());
        certs.write("elsewhere.key", &elsewhere_key.serialize_pem());
        let client_key = KeyPair::generate().expect("key");
        let client = leaf(
            vec!["session-server".into()],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
        .signed_by(&client_key, &ca)
        .expect("client certificate");
        certs.write("client.pem", &client.pem());
        certs.write("client.key", &client_key.serialize_pem());
        certs
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, pem: &str) {
        let path = self.path(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("mode 0600");
    }
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn leaf(names: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>) -> CertificateParams {
    let mut params = CertificateParams::new(names.clone()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.extended_key_usages = usages;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params
}
