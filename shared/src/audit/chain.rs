//! Checking one chain: pure, so every way a chain can be broken is tested without a table.
//!
//! A chain is intact when its entries are numbered 1, 2, 3 ... without a gap or a repeat, each
//! entry's content still gives its hash, each links to the hash of the one before (the first to
//! [`GENESIS`]), and its head (the item appends go through) names the last entry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::entry::{AuditEntry, GENESIS};

/// A chain's head: where the next entry goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub chain: String,
    /// The last entry's `seq` (0 before the first).
    pub seq: u64,
    /// The last entry's hash ([`GENESIS`] before the first).
    pub hash: String,
    /// The chain's merchant, fixed by the first entry that knows it.
    pub merchant: Option<String>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

/// What is wrong at a broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum Problem {
    /// The entry's content no longer gives its hash.
    Edited,
    /// Entries `from..seq` are missing: deleted.
    Missing { from: u64 },
    /// The entry is not where it was appended: it links to an entry that comes after it.
    Reordered,
    /// Two entries carry the same number.
    Repeated,
    /// The entry does not link to the entry before it: that one was rewritten or replaced.
    LinkBroken,
    /// The head names more entries than are stored: the last ones were deleted.
    TailMissing { head_seq: u64 },
    /// The head does not name the last entry.
    HeadMismatch,
    /// The chain has entries but no head.
    NoHead,
    /// A digest anchored this entry with another hash, or the entry is gone.
    DigestMismatch { digest: String },
    /// A digest is not the one the archive holds, or its own chain is broken.
    DigestTampered { digest: String },
}

impl Problem {
    pub fn describe(&self) -> String {
        match self {
            Problem::Edited => "edited: its content no longer gives its hash".into(),
            Problem::Missing { from } => format!("entries from {from} up to it are missing (deleted)"),
            Problem::Reordered => "reordered: it links to an entry that comes after it".into(),
            Problem::Repeated => "repeated: another entry carries the same number".into(),
            Problem::LinkBroken => "does not link to the entry before it (that entry was rewritten or replaced)".into(),
            Problem::TailMissing { head_seq } => {
                format!("missing: the chain's head names {head_seq} entries (the last ones were deleted)")
            }
            Problem::HeadMismatch => "the chain's head does not name its last entry".into(),
            Problem::NoHead => "the chain has entries but no head".into(),
            Problem::DigestMismatch { digest } => {
                format!("differs from what digest {digest} anchored (edited, or rewritten with new hashes)")
            }
            Problem::DigestTampered { digest } => format!("digest {digest} was changed or removed"),
        }
    }
}

/// The first broken link found, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub chain: String,
    pub seq: u64,
    /// What the entry recorded (`evt_...`, `api_...`, `cb_...`), when it is stored.
    pub source: Option<String>,
    #[serde(flatten)]
    pub problem: Problem,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chain {} entry {}", self.chain, self.seq)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        write!(f, ": {}", self.problem.describe())
    }
}

/// An intact chain's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: usize,
    pub last_seq: u64,
    pub last_hash: String,
}

/// Checks `entries` (all of one chain, any order) against each other and against `head`.
pub fn verify(chain: &str, entries: &[AuditEntry], head: Option<&Head>) -> Result<Verified, BrokenLink> {
    let mut sorted: Vec<&AuditEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.seq);
    // Which stored hash belongs to which number, to tell a reordering from an edit.
    let seq_of_hash: HashMap<&str, u64> = sorted.iter().map(|e| (e.hash.as_str(), e.seq)).collect();
    let links_forward = |e: &AuditEntry| seq_of_hash.get(e.prev_hash.as_str()).is_some_and(|s| *s >= e.seq);
    let broken = |e: &AuditEntry, problem: Problem| BrokenLink {
        chain: chain.to_owned(),
        seq: e.seq,
        source: Some(e.source.clone()),
        problem,
    };
    let mut expected = 1;
    let mut prev_hash = GENESIS.to_owned();
    for e in &sorted {
        if e.seq < expected {
            return Err(broken(e, Problem::Repeated));
        }
        if e.seq > expected {
            return Err(broken(e, Problem::Missing { from: expected }));
        }
        if e.chain != chain {
            return Err(broken(e, Problem::Edited));
        }
        if !e.is_intact() {
            let problem = if links_forward(e) {
                Problem::Reordered
            } else {
                Problem::Edited
            };
            return Err(broken(e, problem));
        }
        if e.prev_hash != prev_hash {
            let problem = if links_forward(e) {
                Problem::Reordered
            } else {
                Problem::LinkBroken
            };
            return Err(broken(e, problem));
        }
        prev_hash = e.hash.clone();
        expected += 1;
    }
    let last_seq = expected - 1;
    match head {
        None if last_seq > 0 => {
            return Err(BrokenLink {
                chain: chain.to_owned(),
                seq: last_seq,
                source: sorted.last().map(|e| e.source.clone()),
                problem: Problem::NoHead,
            })
        }
        None => {}
        Some(head) if head.seq > last_seq => {
            return Err(BrokenLink {
                chain: chain.to_owned(),
                seq: last_seq + 1,
                source: None,
                problem: Problem::TailMissing { head_seq: head.seq },
            })
        }
        Some(head) if head.seq != last_seq || head.hash != prev_hash => {
            return Err(BrokenLink {
                chain: chain.to_owned(),
                seq: last_seq,
                source: sorted.last().map(|e| e.source.clone()),
                problem: Problem::HeadMismatch,
            })
        }
        Some(_) => {}
    }
    Ok(Verified {
        entries: sorted.len(),
        last_seq,
        last_hash: prev_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Appends entries to a chain in memory (tests and the property test).
    pub(crate) fn build(chain: &str, count: u64) -> (Vec<AuditEntry>, Head) {
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=count {
            let e = crate::audit::entry::tests::entry(chain, seq, &prev);
            prev = e.hash.clone();
            entries.push(e);
        }
        let head = Head {
            chain: chain.to_owned(),
            seq: count,
            hash: prev,
            merchant: Some("shop".into()),
            updated_at: entries.last().map(|e| e.recorded_at).unwrap_or_default(),
            version: count,
        };
        (entries, head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (entries, head) = build("pay_1", 5);
        let ok = verify("pay_1", &entries, Some(&head)).unwrap();
        assert_eq!((ok.entries, ok.last_seq), (5, 5));
        assert_eq!(verify("pay_1", &[], None).unwrap().entries, 0);
    }

    #[test]
    fn an_edit_names_the_edited_entry() {
        let (mut entries, head) = build("pay_1", 5);
        entries[2].detail["amount"] = serde_json::json!(1);
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem.clone()), (3, Problem::Edited));
        assert!(
            broken
                .to_string()
                .starts_with("chain pay_1 entry 3 (src_pay_1_3): edited"),
            "{broken}"
        );
        // Rewritten with a fresh hash: the next entry no longer links to it.
        entries[2] = entries[2].clone().seal();
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (4, Problem::LinkBroken));
    }

    #[test]
    fn a_deletion_names_where_entries_are_missing() {
        let (mut entries, head) = build("pay_1", 5);
        entries.remove(1);
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (3, Problem::Missing { from: 2 }));
        // The last ones deleted: the head still names them.
        let (mut entries, head) = build("pay_1", 5);
        entries.truncate(3);
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (4, Problem::TailMissing { head_seq: 5 }));
        // Entries without their head.
        let (entries, _) = build("pay_1", 2);
        assert_eq!(verify("pay_1", &entries, None).unwrap_err().problem, Problem::NoHead);
    }

    #[test]
    fn a_reordering_names_the_moved_entry() {
        let (mut entries, head) = build("pay_1", 5);
        entries[1].seq = 3;
        entries[2].seq = 2;
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem.clone()), (2, Problem::Reordered));
        assert_eq!(broken.source.as_deref(), Some("src_pay_1_3"));
        // Even with their hashes recomputed for the new places, the moved entry is named.
        entries[1] = entries[1].clone().seal();
        entries[2] = entries[2].clone().seal();
        let broken = verify("pay_1", &entries, Some(&head)).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (2, Problem::LinkBroken));
        assert_eq!(broken.source.as_deref(), Some("src_pay_1_3"));
        // Two entries with one number.
        let (mut entries, head) = build("pay_1", 3);
        entries[2].seq = 2;
        assert_eq!(
            verify("pay_1", &entries, Some(&head)).unwrap_err().problem,
            Problem::Repeated
        );
    }

    #[test]
    fn a_head_that_does_not_name_the_last_entry_is_reported() {
        let (entries, mut head) = build("pay_1", 3);
        head.hash = GENESIS.into();
        assert_eq!(
            verify("pay_1", &entries, Some(&head)).unwrap_err().problem,
            Problem::HeadMismatch
        );
        // An entry moved in from another chain.
        let (mut entries, head) = build("pay_1", 3);
        entries[0].chain = "pay_2".into();
        assert_eq!(verify("pay_1", &entries, Some(&head)).unwrap_err().seq, 1);
    }

    proptest! {
        /// Whatever single entry is edited, deleted or swapped with its neighbour, verification
        /// fails and names that entry (or, for a deletion, the first one after the gap).
        #[test]
        fn every_single_tampering_is_named(len in 2u64..12, at in 0usize..11, how in 0u8..3) {
            let at = at % (len as usize - 1);
            let (mut entries, head) = build("c", len);
            let expected_seq = match how {
                0 => { entries[at].outcome.push('x'); at as u64 + 1 }
                1 => { entries.remove(at); at as u64 + 1 }
                _ => {
                    let (a, b) = (entries[at].seq, entries[at + 1].seq);
                    entries[at].seq = b;
                    entries[at + 1].seq = a;
                    at as u64 + 1
                }
            };
            let broken = verify("c", &entries, Some(&head)).unwrap_err();
            // A deletion is reported at the entry after the gap (or as a missing tail).
            let seq = if how == 1 { expected_seq + 1 } else { expected_seq };
            prop_assert_eq!(broken.seq, seq);
        }
    }
}
