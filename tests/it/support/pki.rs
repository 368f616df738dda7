//! A throwaway certificate authority for the TLS tests.

use std::path::PathBuf;

/// A throwaway CA and a leaf certificate for 127.0.0.1 signed by it (P-256,
/// one day), made with the `openssl` command line in `dir`.
pub struct TestPki {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The leaf certificate (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
}

/// Makes a [`TestPki`] in `dir`.
pub fn test_pki(dir: &std::path::Path) -> TestPki {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (ca, ca_key, csr, cert, key, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("leaf.csr"),
        path("cert.pem"),
        path("key.pem"),
        path("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=gnapd test CA",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    TestPki {
        ca: PathBuf::from(ca),
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    }
}
