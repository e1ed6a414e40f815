//! `audit verify`: recompute every chain and every digest, and name the first broken link.
//!
//! 1. Every chain (found from its head): [`super::chain::verify`].
//! 2. Every merchant's digests: numbered 1, 2, 3 ..., each intact and linked to the one before,
//!    the last one named by the merchant's digest head; with an archive, each identical to its
//!    archived copy, and no archived digest beyond the table's last (digests deleted).
//! 3. Every anchor of every digest: the chain's entry at that number still has that hash (so a
//!    chain rewritten whole, or deleted with its head, is found).

use std::collections::HashMap;

use serde::Serialize;

use super::chain::{self, BrokenLink, Problem};
use super::digest::{Digest, DigestArchive};
use super::entry::{AuditEntry, GENESIS};
use super::repo;
use crate::store::{StoreError, Table};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub chains: usize,
    pub entries: usize,
    pub digests: usize,
    pub anchors: usize,
    /// Digests compared with the archive's copy.
    pub archived: usize,
    /// The first broken link; `None`: the log is intact.
    pub broken: Option<BrokenLink>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

fn digest_break(digest: &str, seq: u64) -> BrokenLink {
    BrokenLink {
        chain: format!("digests/{digest}"),
        seq,
        source: None,
        problem: Problem::DigestTampered {
            digest: digest.to_owned(),
        },
    }
}

/// Verifies the whole log in `table` (and its digests against `archive`, when given).
pub async fn verify(table: &dyn Table, archive: Option<&dyn DigestArchive>) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let far_future = chrono::Utc::now() + chrono::Duration::days(365 * 100);
    let heads = repo::heads_updated(table, None, far_future, 500).await?;
    // chain -> seq -> hash, for the anchors.
    let mut hashes: HashMap<String, HashMap<u64, String>> = HashMap::new();
    for listed in &heads {
        let entries = match settled_chain(table, &listed.chain).await? {
            Ok(entries) => entries,
            Err(broken) => {
                report.broken = Some(broken);
                return Ok(report);
            }
        };
        report.chains += 1;
        report.entries += entries.len();
        hashes.insert(
            listed.chain.clone(),
            entries.into_iter().map(|e| (e.seq, e.hash)).collect(),
        );
    }
    for digest_head in repo::digest_heads(table).await? {
        let merchant = digest_head.merchant.clone();
        let digests = repo::digests(table, &merchant).await?;
        let mut prev = GENESIS.to_owned();
        for (i, digest) in digests.iter().enumerate() {
            let intact = digest.seq == i as u64 + 1
                && digest.merchant == merchant
                && digest.is_intact()
                && digest.prev_hash == prev;
            if !intact {
                report.broken = Some(digest_break(&format!("{merchant}/{}", i + 1), i as u64 + 1));
                return Ok(report);
            }
            prev = digest.hash.clone();
        }
        if digest_head.seq != digests.len() as u64 || digest_head.hash != prev {
            let missing = digests.len() as u64 + 1;
            report.broken = Some(digest_break(&format!("{merchant}/{missing}"), missing));
            return Ok(report);
        }
        if let Some(archive) = archive {
            for digest in &digests {
                let archived = archive
                    .get(&merchant, digest.seq)
                    .await
                    .map_err(StoreError::Unavailable)?;
                if archived.as_deref() != Some(digest.archived_text().as_str()) {
                    report.broken = Some(digest_break(&digest.name(), digest.seq));
                    return Ok(report);
                }
                report.archived += 1;
            }
            // Digests deleted from the table (with their head rewound) are still archived.
            let next = digests.len() as u64 + 1;
            if archive
                .get(&merchant, next)
                .await
                .map_err(StoreError::Unavailable)?
                .is_some()
            {
                report.broken = Some(digest_break(&format!("{merchant}/{next}"), next));
                return Ok(report);
            }
        }
        for digest in &digests {
            report.digests += 1;
            if let Some(broken) = check_anchors(table, digest, &mut hashes, &mut report).await? {
                report.broken = Some(broken);
                return Ok(report);
            }
        }
    }
    Ok(report)
}

/// Attempts at reading a chain that is still being appended to before a mismatch between its
/// head and its entries counts as broken.
const SETTLE_ATTEMPTS: u32 = 10;

/// One chain, checked against its head read by key (the index's copy of a head may be behind),
/// up to the head: entries appended after the head was read are the next read's. A live log may
/// move between the two reads, or its index may lag the head: a mismatch at the tail is read
/// again before it counts.
async fn settled_chain(table: &dyn Table, chain_id: &str) -> Result<Result<Vec<AuditEntry>, BrokenLink>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let head = repo::head(table, chain_id).await?;
        let entries = repo::whole_chain(table, chain_id).await?;
        let last = attempt >= SETTLE_ATTEMPTS;
        let (upto, beyond): (Vec<AuditEntry>, Vec<AuditEntry>) = match &head {
            Some(h) => entries.into_iter().partition(|e| e.seq <= h.seq),
            None => (entries, Vec::new()),
        };
        if !beyond.is_empty() && !last {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        let mut checked = upto;
        checked.extend(beyond);
        match chain::verify(chain_id, &checked, head.as_ref()) {
            Ok(_) => return Ok(Ok(checked)),
            Err(broken) if !last && matches!(broken.problem, Problem::TailMissing { .. } | Problem::HeadMismatch) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(broken) => return Ok(Err(broken)),
        }
    }
}

async fn check_anchors(
    table: &dyn Table,
    digest: &Digest,
    hashes: &mut HashMap<String, HashMap<u64, String>>,
    report: &mut Report,
) -> Result<Option<BrokenLink>, StoreError> {
    for anchor in &digest.anchors {
        report.anchors += 1;
        if !hashes.contains_key(&anchor.chain) {
            // A chain without a head (deleted with it): whatever entries are left.
            let entries: Vec<AuditEntry> = repo::whole_chain(table, &anchor.chain).await?;
            hashes.insert(
                anchor.chain.clone(),
                entries.into_iter().map(|e| (e.seq, e.hash)).collect(),
            );
        }
        let stored = hashes.get(&anchor.chain).and_then(|c| c.get(&anchor.seq));
        if stored != Some(&anchor.hash) {
            let source = match stored {
                Some(_) => find_source(table, &anchor.chain, anchor.seq).await?,
                None => None,
            };
            return Ok(Some(BrokenLink {
                chain: anchor.chain.clone(),
                seq: anchor.seq,
                source,
                problem: Problem::DigestMismatch { digest: digest.name() },
            }));
        }
    }
    Ok(None)
}

async fn find_source(table: &dyn Table, chain: &str, seq: u64) -> Result<Option<String>, StoreError> {
    let page = repo::chain_page(table, chain, seq.saturating_sub(1), 1).await?;
    Ok(page.into_iter().find(|e| e.seq == seq).map(|e| e.source))
}
