//! The upstreams of a start: the file's, then the flags'.

use super::*;

/// The file's upstreams, then the flags': `--upstream` adds one (or moves an
/// existing one to a new URL or command, keeping its credential), and
/// `--upstream-credential` sets the credential of a named one (several `env`
/// ones for one upstream collect into one set). Last, every credential must
/// fit its upstream's transport.
pub(super) fn assemble_upstreams(
    entries: Vec<UpstreamEntry>,
    specs: Vec<(String, String)>,
    credentials: Vec<(String, Credential)>,
) -> Result<Vec<Upstream>, ConfigError> {
    let mut upstreams: Vec<Upstream> = Vec::new();
    for entry in entries {
        if upstreams.iter().any(|u| u.name == entry.name) {
            return Err(ConfigError::Invalid(format!(
                "upstream `{}` is defined twice",
                entry.name
            )));
        }
        upstreams.push(entry.into_upstream().map_err(invalid)?);
    }
    for (name, spec) in specs {
        let credential = match upstreams.iter().position(|u| u.name == name) {
            Some(i) => upstreams.remove(i).credential,
            None => Credential::None,
        };
        upstreams.push(Upstream::from_spec(&name, &spec, credential).map_err(invalid)?);
    }
    let mut given: Vec<(String, Credential)> = Vec::new();
    for (name, credential) in credentials {
        match given.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                let (_, earlier) = given.remove(i);
                let merged = earlier.merge(credential).map_err(|e| {
                    ConfigError::Invalid(format!("--upstream-credential for `{name}`: {e}"))
                })?;
                given.push((name, merged));
            }
            None => given.push((name, credential)),
        }
    }
    for (name, credential) in given {
        let upstream = upstreams
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "a credential is given for upstream `{name}`, which is not configured"
                ))
            })?;
        upstream.credential = credential;
    }
    for upstream in &upstreams {
        upstream.check_credential().map_err(invalid)?;
    }
    Ok(upstreams)
}
