//! Counters in this process's memory: the throttle of the `memory` session type, which is one
//! process by design. One mutex makes each reservation atomic among this process's workers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;

use super::{Counters, Plan, Recent, ThrottleError};

/// Past this many tracked keys, keys with nothing left in the window are dropped, at most once
/// per [`PRUNE_EVERY_MS`]: a flood of distinct keys must not make every attempt scan the table.
const PRUNE_AT: usize = 100_000;
const PRUNE_EVERY_MS: u64 = 1_000;

#[derive(Default)]
pub struct InProcessCounters {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Per key, its attempts oldest first: (unix ms, member).
    attempts: HashMap<String, VecDeque<(u64, String)>>,
    pruned_at: Option<u64>,
}

impl Counters for InProcessCounters {
    fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
        let mut table = self.table.lock();
        let due = table
            .pruned_at
            .is_none_or(|at| plan.now.saturating_sub(at) >= PRUNE_EVERY_MS);
        if table.attempts.len() >= PRUNE_AT && due {
            table.pruned_at = Some(plan.now);
            table
                .attempts
                .retain(|_, recent| recent.back().is_some_and(|(t, _)| plan.in_window(*t)));
        }
        let attempts = &mut table.attempts;
        let recent: Vec<Recent> = plan
            .entries
            .iter()
            .map(|e| match attempts.get_mut(&e.name) {
                Some(list) => {
                    while list.front().is_some_and(|(t, _)| !plan.in_window(*t)) {
                        list.pop_front();
                    }
                    Recent {
                        count: u64::try_from(list.len()).unwrap_or(u64::MAX),
                        latest: list.iter().map(|(t, _)| *t).max().unwrap_or(0),
                    }
                }
                None => Recent::default(),
            })
            .collect();
        if let Some(wait) = plan.wait(&recent) {
            return Ok(Some(wait));
        }
        for entry in plan.counted() {
            attempts
                .entry(entry.name.clone())
                .or_default()
                .push_back((plan.now, plan.member.clone()));
        }
        Ok(None)
    }

    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), ThrottleError> {
        let attempts = &mut self.table.lock().attempts;
        for key in clear {
            attempts.remove(key);
        }
        for key in keys {
            if let Some(list) = attempts.get_mut(key) {
                list.retain(|(_, m)| m != member);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl InProcessCounters {
    pub(super) fn pruned_at(&self) -> Option<u64> {
        self.table.lock().pruned_at
    }
}
