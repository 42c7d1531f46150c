//! The HTTPS listener's certificate: the operator's PEM files, or a self-signed development
//! certificate created on first start and reused on later ones (so a browser exception or a
//! pinned `curl --cacert` keeps working across restarts).
//!
//! Both are loaded here once before Pingora starts, because Pingora's TLS setup panics inside a
//! service thread on an unusable file; here it becomes a startup error naming the file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::settings::CertificateSource;

const DEV_CERT: &str = "dev-cert.pem";
const DEV_KEY: &str = "dev-key.pem";

pub struct CertificateFiles {
    pub cert: String,
    pub key: String,
}

/// Returns loadable certificate and key paths, creating the development pair if needed.
pub fn prepare(source: &CertificateSource) -> anyhow::Result<CertificateFiles> {
    let (cert, key) = match source {
        CertificateSource::Files { cert, key } => (cert.clone(), key.clone()),
        CertificateSource::DevDirectory(dir) => ensure_dev_certificate(dir)?,
    };
    let files = CertificateFiles {
        cert: utf8_path(&cert)?,
        key: utf8_path(&key)?,
    };
    match pingora::tls::load_certs_and_key_files(&files.cert, &files.key) {
        Ok(Some(_)) => Ok(files),
        Ok(None) => bail!(
            "{} holds no certificate or {} holds no private key",
            files.cert,
            files.key
        ),
        Err(error) => bail!("cannot read {} or {}: {error}", files.cert, files.key),
    }
}

fn utf8_path(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))
}

/// Reuses the pair in `dir` if both files exist, otherwise writes a new one.
fn ensure_dev_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join(DEV_CERT), dir.join(DEV_KEY));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let names = ["localhost", "127.0.0.1", "::1"].map(str::to_owned);
    let generated = rcgen::generate_simple_self_signed(names)
        .context("cannot generate the development certificate")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Key first: a certificate on disk without its key would be taken for a complete pair.
    write_atomically(&key, generated.signing_key.serialize_pem().as_bytes())?;
    write_atomically(&cert, generated.cert.pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed development certificate");
    Ok((cert, key))
}

/// Writes through a temporary file and a rename, so a crash never leaves half a PEM behind.
/// The file is private to the user: one of them is a private key.
fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("pem.partial");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&partial)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&partial, path));
    written.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_certificate_is_created_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("meridian-edge-tls-{}", std::process::id()));
        let source = CertificateSource::DevDirectory(dir.clone());

        let first = prepare(&source).unwrap();
        let first_pem = fs::read(&first.cert).unwrap();
        let second = prepare(&source).unwrap();

        assert_eq!(fs::read(&second.cert).unwrap(), first_pem);
        assert!(
            String::from_utf8(first_pem)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unusable_files_are_a_startup_error() {
        let source = CertificateSource::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let error = prepare(&source).err().unwrap();
        assert!(
            error.to_string().contains("/nonexistent/cert.pem"),
            "{error}"
        );
    }
}
