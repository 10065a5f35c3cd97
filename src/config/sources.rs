//! Where raw settings come from besides the file: the environment
//! (`OUTRIDER_<SECTION>__<KEY>`) and the command-line flags, merged into the TOML
//! table before it is deserialized.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::{Overrides, RawConfig};

/// Deserializes, listing every unknown key rather than stopping at the first. A
/// value of the wrong shape is returned for [`super::errors::shape`] to word.
pub(super) fn parse_table(
    table: toml::Table,
    errors: &mut Vec<String>,
) -> Result<RawConfig, toml::de::Error> {
    let mut unknown = Vec::new();
    let result: Result<RawConfig, _> =
        serde_ignored::deserialize(toml::Value::Table(table), |path| {
            unknown.push(path.to_string())
        });
    for key in unknown {
        errors.push(format!("{key}: unknown key"));
    }
    result
}

/// [`parse_table`] until every key of the wrong shape is known: deserializing
/// stops at the first (`currency = 5`), so each one found is taken out of the
/// table (its default stands in) and the rest is read again, up to a bound.
/// Returns the config when the rest reads, the shape errors (each with its key and
/// where it was set), the unknown keys of the last read, and the keys taken out.
pub(super) fn parse_every_key(
    mut table: toml::Table,
    located: Option<(&std::path::Path, &str)>,
    applied: &[(String, String)],
) -> (Option<RawConfig>, Vec<String>, Vec<String>, Vec<String>) {
    const MOST: usize = 64;
    let mut shapes = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let mut unknown = Vec::new();
        let parsed = parse_table(table.clone(), &mut unknown);
        let unknown = unknown
            .into_iter()
            .map(|u| {
                let hint = did_you_mean(&u);
                named_by_env(u, applied) + &hint
            })
            .collect();
        let e = match parsed {
            Ok(raw) => return (Some(raw), shapes, unknown, removed),
            Err(e) => e,
        };
        // toml's path names no array index (`targets.pid`): find the element.
        let key = super::errors::key_of(&e).map(|k| indexed(&table, &k));
        // A required key taken out (its parent now lacks it) says nothing new.
        let after_removal = e.message().starts_with("missing field")
            && key
                .as_ref()
                .is_some_and(|k| removed.iter().any(|r| r.starts_with(k.as_str())));
        if !after_removal {
            shapes.push(super::errors::shape(&e, key.as_deref(), located, applied));
        }
        match key {
            Some(k) if !after_removal && shapes.len() < MOST && remove(&mut table, &k) => {
                removed.push(k)
            }
            _ => return (None, shapes, unknown, removed),
        }
    }
}

/// `key` with the index of each array of the path filled in: the element the
/// error is in, found by deserializing the table written out as text, whose
/// error has a position, and taking the element that position falls in (the last
/// that starts before it: an array of tables' element spans its header). `key` as
/// it is when that cannot be told.
fn indexed(table: &toml::Table, key: &str) -> String {
    use toml::de::{DeTable, DeValue};
    let find = || -> Option<String> {
        let text = toml::to_string(table).ok()?;
        let at = toml::from_str::<RawConfig>(&text).err()?.span()?.start;
        let doc = DeTable::parse(&text).ok()?;
        let parts: Vec<&str> = key.split('.').collect();
        let mut out = Vec::new();
        let mut cur: Option<&toml::Spanned<DeValue>> = None;
        let mut i = 0;
        while i < parts.len() {
            let part = parts[i];
            let next = match cur.map(|v| v.get_ref()) {
                None => doc.get_ref().iter().find(|(k, _)| k.get_ref() == part)?.1,
                Some(DeValue::Table(t)) => t.iter().find(|(k, _)| k.get_ref() == part)?.1,
                _ => return None,
            };
            out.push(part.to_string());
            i += 1;
            cur = Some(next);
            // An array on the way (the key's own value may be an array too: left).
            while let (true, Some(DeValue::Array(a))) = (i < parts.len(), cur.map(|v| v.get_ref()))
            {
                let index = match parts.get(i).and_then(|p| p.parse::<usize>().ok()) {
                    Some(n) => {
                        i += 1;
                        n
                    }
                    None => a.iter().rposition(|e| e.span().start <= at)?,
                };
                out.push(index.to_string());
                cur = Some(a.get(index)?);
            }
        }
        Some(out.join("."))
    };
    find().unwrap_or_else(|| key.to_string())
}

/// A key path without its array indexes: `targets.0.pid` as `targets.pid`.
pub(super) fn without_indexes(key: &str) -> String {
    key.split('.')
        .filter(|s| s.parse::<usize>().is_err())
        .collect::<Vec<_>>()
        .join(".")
}

/// `foo: unknown key` as `foo (set by OUTRIDER_FOO__BAR): unknown key` when the
/// environment set it (or a key under it): the user looks for a variable, not a
/// line of the file.
/// For `<key>: unknown key`, ` (did you mean `<known key>`?)` when a key of the
/// same table (as the defaults write it out) is a typo away: at most a third of
/// its letters changed, two at most. Empty when none is that close (and for keys
/// under an array of tables, whose defaults hold no element).
fn did_you_mean(problem: &str) -> String {
    let Some(key) = problem.strip_suffix(": unknown key") else {
        return String::new();
    };
    let Ok(toml::Value::Table(mut table)) = toml::Value::try_from(RawConfig::default()) else {
        return String::new();
    };
    let (parent, leaf) = match key.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, key),
    };
    for part in parent.into_iter().flat_map(|p| p.split('.')) {
        match table.remove(part) {
            Some(toml::Value::Table(t)) => table = t,
            _ => return String::new(),
        }
    }
    let most = (leaf.chars().count() / 3).min(2);
    table
        .keys()
        .map(|k| (strsim::levenshtein(k, leaf), k))
        .filter(|(d, _)| (1..=most).contains(d))
        .min()
        .map(|(_, k)| match parent {
            Some(p) => format!(" (did you mean `{p}.{k}`?)"),
            None => format!(" (did you mean `{k}`?)"),
        })
        .unwrap_or_default()
}

fn named_by_env(problem: String, applied: &[(String, String)]) -> String {
    let Some(key) = problem.strip_suffix(": unknown key") else {
        return problem;
    };
    let under = |k: &str| {
        let k = without_indexes(k);
        let key = without_indexes(key);
        k == key || k.strip_prefix(&key).is_some_and(|r| r.starts_with('.'))
    };
    match applied.iter().find(|(_, k)| under(k)) {
        Some((var, _)) => format!("{key} (set by {var}): unknown key"),
        None => problem,
    }
}

/// Whether a problem the validation found follows from a key taken out for its
/// shape: `targets[0]: needs one of pid, …` after `targets.0.pid` was a string.
/// The problem's key (before its `:`) is the taken key's table or under it, and
/// it names the taken key.
pub(super) fn follows_from_removal(problem: &str, removed: &[String]) -> bool {
    let Some((key, text)) = problem.split_once(':') else {
        return false;
    };
    // `targets[1].name` as `targets.1.name`.
    let key = key.trim().replace('[', ".").replace(']', "");
    removed.iter().any(|r| match r.rsplit_once('.') {
        // Under the table that lost the key (its element, when indexed), and
        // naming that key.
        Some((table, leaf)) => {
            (key == table || key.starts_with(&format!("{table}."))) && text.contains(leaf)
        }
        None => false,
    })
}

/// Takes the value at `key` (`a.b`, `targets.0.pid`; `targets.pid`: from every
/// element of the array) out of `table`; whether any was there.
fn remove(table: &mut toml::Table, key: &str) -> bool {
    fn from(v: &mut toml::Value, parts: &[&str]) -> bool {
        let Some((part, rest)) = parts.split_first() else {
            return false;
        };
        match v {
            // A key may hold dots itself (`"app.kubernetes.io/name"` in a map of
            // labels), and the error's path does not quote it: the longest run of
            // parts that is a key of this table first.
            toml::Value::Table(t) => (1..=parts.len()).rev().any(|n| {
                let key = parts[..n].join(".");
                match n == parts.len() {
                    true => t.remove(&key).is_some(),
                    false => t.get_mut(&key).is_some_and(|v| from(v, &parts[n..])),
                }
            }),
            toml::Value::Array(a) => match part.parse::<usize>() {
                Ok(i) => a.get_mut(i).is_some_and(|v| from(v, rest)),
                // From every element: not `any`, which stops at the first.
                Err(_) => {
                    let mut removed = false;
                    for v in a.iter_mut() {
                        removed |= from(v, parts);
                    }
                    removed
                }
            },
            _ => false,
        }
    }
    let mut whole = toml::Value::Table(std::mem::take(table));
    let removed = from(&mut whole, &key.split('.').collect::<Vec<_>>());
    if let toml::Value::Table(t) = whole {
        *table = t;
    }
    removed
}

/// The process environment as [`super::load`] takes it. A variable that is not
/// UTF-8 is skipped, unless it is one of ours (`OUTRIDER_…`): that is an error
/// naming it (never showing its value).
pub fn env_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in vars {
        match (name.into_string(), value.into_string()) {
            (Ok(n), Ok(v)) => env.push((n, v)),
            (Ok(n), Err(_)) if n.starts_with("OUTRIDER_") => {
                errors.push(format!("{n}: the value is not valid UTF-8"))
            }
            (Err(n), _) if n.as_bytes().starts_with(b"OUTRIDER_") => errors.push(format!(
                "{}: the variable's name is not valid UTF-8",
                n.to_string_lossy()
            )),
            _ => {}
        }
    }
    (env, errors)
}

/// `OUTRIDER_HTTP__LISTEN=…` sets `http.listen`; `OUTRIDER_TARGETS__0__PID=…` sets
/// `targets[0].pid`. Values are strings (numeric fields accept them), or arrays
/// written in TOML (`OUTRIDER_RECEIVERS__0__ALERTNAMES='["TargetDown"]'`). `OUTRIDER_LOG`
/// and `OUTRIDER_CONFIG` (single underscore-free names) are not config keys.
/// Returns each variable applied with the key path it set, array indices left out
/// (`receivers.url`), as TOML's errors name keys.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    errors: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("OUTRIDER_") && k.contains("__"))
        .collect();
    vars.sort();
    for (key, value) in vars {
        let path: Vec<String> = key["OUTRIDER_".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        // With its indexes (`targets.0.pid`): errors name the element.
        applied.push((key.clone(), path.join(".")));
        if let Err(e) = set_path(table, &path, env_value(value)) {
            errors.push(format!("{key}: {e}"));
        }
    }
    applied
}

/// An environment value is a string, except one written as a TOML array
/// (`["a", "b"]`), which list keys such as `group_by` or `alertnames` need.
fn env_value(value: String) -> toml::Value {
    if value.trim_start().starts_with('[') {
        if let Ok(mut t) = format!("v = {value}").parse::<toml::Table>() {
            if let Some(v @ toml::Value::Array(_)) = t.remove("v") {
                return v;
            }
        }
    }
    toml::Value::String(value)
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty key")?;
    if first.is_empty() {
        return Err("empty key segment".into());
    }
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let slot = table
        .entry(first.clone())
        .or_insert_with(|| match rest[0].parse::<usize>() {
            Ok(_) => toml::Value::Array(Vec::new()),
            Err(_) => toml::Value::Table(toml::Table::new()),
        });
    set_value(slot, rest, value)
}

fn set_value(slot: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    match slot {
        toml::Value::Table(t) => set_path(t, path, value),
        toml::Value::Array(items) => {
            let index: usize = path[0]
                .parse()
                .map_err(|_| format!("{:?} is not an array index", path[0]))?;
            if index > items.len() {
                return Err(format!(
                    "index {index} skips entries: the array has {} so far",
                    items.len()
                ));
            }
            if index == items.len() {
                items.push(toml::Value::Table(toml::Table::new()));
            }
            if path.len() == 1 {
                items[index] = value;
                return Ok(());
            }
            set_value(&mut items[index], &path[1..], value)
        }
        _ => Err("sets a key inside a value that is not a table".into()),
    }
}

pub(super) fn apply_overrides(table: &mut toml::Table, o: &Overrides) {
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.insert(key.to_string(), value);
        } else {
            *entry = toml::Value::Table(toml::Table::from_iter([(key.to_string(), value)]));
        }
    };
    if let Some(listen) = &o.listen {
        set("http", "listen", toml::Value::String(listen.clone()));
    }
    if let Some(record) = &o.record {
        set("sampling", "record", toml::Value::String(record.clone()));
    }
    if let Some(interval) = &o.interval {
        set(
            "sampling",
            "interval",
            toml::Value::String(interval.clone()),
        );
    }
    if let Some(pid) = o.pid {
        let target =
            toml::Table::from_iter([("pid".to_string(), toml::Value::Integer(pid.into()))]);
        table.insert(
            "targets".into(),
            toml::Value::Array(vec![toml::Value::Table(target)]),
        );
    }
    if let Some(log) = &o.log {
        let entry =
            toml::Table::from_iter([("path".to_string(), toml::Value::String(log.clone()))]);
        table.insert(
            "logs".into(),
            toml::Value::Array(vec![toml::Value::Table(entry)]),
        );
    }
}
