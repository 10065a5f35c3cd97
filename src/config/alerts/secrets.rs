//! The secrets of `[[receivers]]` and `[alerts]`: how `check-config` shows them
//! (`<redacted>`), and how a `*_file` key's file is read (a regular file of at most
//! [`MAX_SECRET_FILE_BYTES`]; errors name the key and path, never the content).

use std::collections::BTreeMap;

const REDACTED: &str = "<redacted>";

pub(super) fn redact<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

pub(super) fn redact_map<S: serde::Serializer>(
    m: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for k in m.keys() {
        out.serialize_entry(k, REDACTED)?;
    }
    out.end()
}

pub(super) fn redact_url<S: serde::Serializer>(
    u: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let u = u.as_deref().unwrap_or("");
    let shown = match u.find("://") {
        Some(i) => {
            let rest = &u[i + 3..];
            let host = rest.split(['/', '?']).next().unwrap_or("");
            // user:password@ in the authority is a secret too.
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{}://{host}/{REDACTED}", &u[..i])
        }
        None => REDACTED.to_string(),
    };
    s.serialize_str(&shown)
}

/// `alerts.external_url` as `check-config` shows it: scheme, host and path, with
/// `user:password@` and the query and fragment (a token) as `<redacted>`.
#[allow(clippy::ptr_arg)] // serde's serialize_with takes the field's own type
pub(super) fn redact_external_url<S: serde::Serializer>(
    u: &String,
    s: S,
) -> Result<S::Ok, S::Error> {
    let (scheme, rest) = match u.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), u.as_str()),
    };
    let (rest, tail) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], format!("?{REDACTED}")),
        None => (rest, String::new()),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_string(),
    };
    s.serialize_str(&format!("{scheme}{host}{path}{tail}"))
}

/// A value given inline or in a file (trailing newline trimmed), never both.
pub(super) fn inline_or_file(
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    errors: &mut Vec<String>,
) -> Option<String> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            errors.push(format!("{key}: set it or {key}_file, not both"));
            None
        }
        (Some(v), None) => Some(v.clone()),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(v) => Some(v.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                // The path is fine to show; the content never is.
                errors.push(format!("{key}_file: {e}"));
                None
            }
        },
        (None, None) => None,
    }
}

/// A token, password, key or URL is far smaller: a file past this is a mistake.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;

/// A `*_file` key's file: a regular file (a FIFO or a device such as /dev/zero
/// would hang the start or never end) of at most [`MAX_SECRET_FILE_BYTES`]. The
/// error names the path, never the content.
fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {path}: {e}");
    // Checked before the open: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "{path} is not a regular file (a FIFO, device or directory cannot be read whole)"
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!("{path} is over 64 KiB, too large for a secret"));
    }
    // std's words, as read_to_string gave them.
    String::from_utf8(bytes)
        .map_err(|_| format!("cannot read {path}: stream did not contain valid UTF-8"))
}
