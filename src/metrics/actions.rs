//! The actions taken before the kill ([`crate::actions`]): one counter by target,
//! action (`signal`, `command`) and result (`ok`, `failed`, `timeout`). Absent
//! until something was done.

use super::{Family, Num};
use crate::actions::ActionCount;

/// Appends `outrider_actions_total`.
pub(super) fn families<'a>(counts: &'a [ActionCount], fams: &mut Vec<Family<'a>>) {
    let mut f = Family::counter(
        "outrider_actions",
        "Actions taken before the kill (a signal to the app's main process, a command), by result: ok, failed (not sent, or the command could not start or exited non-zero), timeout (the command was killed).",
    );
    for c in counts {
        f.add(
            [
                ("target", c.target.as_str()),
                ("action", c.action.as_str()),
                ("result", c.result.as_str()),
            ],
            Num::U(c.count),
        );
    }
    fams.push(f);
}
