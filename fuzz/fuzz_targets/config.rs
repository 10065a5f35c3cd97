//! Config parsing and validation on arbitrary text (TOML, then every section's
//! checks), as `outrider check-config` does it: no panic, and a configuration that
//! loads prints (redacted) as TOML that parses again.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use outrider::config::{load_text, Overrides};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `*_file` keys read files: keep the fuzzer away from devices and /proc.
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let path = Path::new("fuzz.toml");
    let Ok((raw, _config)) = load_text(Some((path, text)), Vec::new(), &Overrides::default())
    else {
        return;
    };
    let printed = toml::to_string_pretty(&raw).expect("check-config prints every config");
    printed
        .parse::<toml::Table>()
        .expect("check-config prints TOML");
});
