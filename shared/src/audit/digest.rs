//! Digests: what anchors every chain of a merchant, so that rewriting a chain whole (new hashes
//! all the way to its head) is still detected.
//!
//! Every sweep, the [`Digester`] reads the chain heads that moved since the last digest (up to
//! [`DIGEST_LAG_SECONDS`] ago, so a head written a moment ago by a slow writer is not skipped
//! by an index still catching up), and writes for each merchant one digest: the heads it saw
//! (chain, seq, hash), linked to the merchant's previous digest by hash. A head that moves again
//! is anchored again by a later digest; an entry is anchored once any digest names a head at or
//! after it. Each digest is also put in the archive (in the template: an S3 bucket with Object
//! Lock in compliance mode), where nobody, not even the account's root, can change or delete it
//! within the retention; `audit verify` compares the two.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::entry::{canonical_json, chained_hash, GENESIS};
use super::repo::{self, NO_MERCHANT};
use crate::clock::Clock;
use crate::engine::{Batch, CommitError, Slot};
use crate::metrics;
use crate::store::{StoreError, Table};

/// Heads are digested once they are this old (index propagation and writers' clocks).
pub const DIGEST_LAG_SECONDS: i64 = 60;

/// How long one run may spend writing and archiving digests: no merchant's digest is started
/// after it (the sweeper's worst case counts it). Merchants left over are digested by the next
/// run, which does not move the watermark past them.
pub const DIGEST_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// One chain's head as a digest saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub merchant: String,
    /// 1, 2, 3 ... per merchant.
    pub seq: u64,
    /// The heads updated after this time ...
    pub after: Option<DateTime<Utc>>,
    /// ... and up to this one.
    pub through: DateTime<Utc>,
    /// Sorted by chain.
    pub anchors: Vec<Anchor>,
    pub created_at: DateTime<Utc>,
    pub prev_hash: String,
    #[serde(default)]
    pub hash: String,
}

impl Digest {
    pub fn compute_hash(&self) -> String {
        chained_hash(&self.prev_hash, self)
    }

    pub fn seal(mut self) -> Digest {
        self.hash = self.compute_hash();
        self
    }

    pub fn is_intact(&self) -> bool {
        self.hash == self.compute_hash()
    }

    /// `<merchant>/<seq>`: how a digest is named in reports and in the archive.
    pub fn name(&self) -> String {
        format!("{}/{:016}", self.merchant, self.seq)
    }

    /// The archive's object key.
    pub fn archive_key(merchant: &str, seq: u64) -> String {
        format!("audit-digests/{merchant}/{seq:016}.json")
    }

    /// The document as archived (canonical JSON, so the table's copy compares byte for byte).
    pub fn archived_text(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or_default())
    }
}

/// A merchant's last digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestHead {
    pub merchant: String,
    pub seq: u64,
    pub hash: String,
    pub through: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

/// How far the digests have reached (all merchants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub through: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

/// Where digests are kept beyond the table's writers' reach.
#[async_trait]
pub trait DigestArchive: Send + Sync {
    /// Stores the digest under [`Digest::archive_key`].
    async fn put(&self, digest: &Digest) -> Result<(), String>;
    /// The archived text of a digest, if any.
    async fn get(&self, merchant: &str, seq: u64) -> Result<Option<String>, String>;
}

/// An archive in memory (the dev stack and tests): write-once, like a locked bucket.
#[derive(Default)]
pub struct MemoryArchive {
    objects: Mutex<BTreeMap<String, String>>,
}

impl MemoryArchive {
    pub fn new() -> MemoryArchive {
        MemoryArchive::default()
    }

    /// Replaces an object (tests: an archive someone managed to change).
    pub fn overwrite(&self, key: &str, text: &str) {
        self.objects
            .lock()
            .expect("archive lock")
            .insert(key.to_owned(), text.to_owned());
    }

    pub fn len(&self) -> usize {
        self.objects.lock().expect("archive lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl DigestArchive for MemoryArchive {
    async fn put(&self, digest: &Digest) -> Result<(), String> {
        let key = Digest::archive_key(&digest.merchant, digest.seq);
        let mut objects = self.objects.lock().expect("archive lock");
        match objects.get(&key) {
            Some(existing) if *existing != digest.archived_text() => Err(format!("{key} is locked")),
            Some(_) => Ok(()),
            None => {
                objects.insert(key, digest.archived_text());
                Ok(())
            }
        }
    }

    async fn get(&self, merchant: &str, seq: u64) -> Result<Option<String>, String> {
        Ok(self
            .objects
            .lock()
            .expect("archive lock")
            .get(&Digest::archive_key(merchant, seq))
            .cloned())
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    pub heads: usize,
    pub digests: usize,
    pub archive_failures: usize,
}

#[derive(Clone)]
pub struct Digester {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// `None`: digests are kept in the table only (the dev stack without an archive).
    pub archive: Option<Arc<dyn DigestArchive>>,
}

impl Digester {
    /// Digests every merchant's heads that moved since the last run.
    pub async fn run(&self) -> Result<DigestReport, StoreError> {
        let now = self.clock.now();
        let through = now - chrono::Duration::seconds(DIGEST_LAG_SECONDS);
        let mark = repo::watermark(self.table.as_ref()).await?;
        let after = mark.as_ref().map(|m| m.through);
        if after.is_some_and(|a| a >= through) {
            return Ok(DigestReport::default());
        }
        let heads = repo::heads_updated(self.table.as_ref(), after, through, 500).await?;
        let mut by_merchant: BTreeMap<String, Vec<Anchor>> = BTreeMap::new();
        let mut updated: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
        for head in &heads {
            let merchant = head.merchant.clone().unwrap_or_else(|| NO_MERCHANT.to_owned());
            updated.entry(merchant.clone()).or_default().push(head.updated_at);
            by_merchant.entry(merchant).or_default().push(Anchor {
                chain: head.chain.clone(),
                seq: head.seq,
                hash: head.hash.clone(),
            });
        }
        let mut report = DigestReport {
            heads: heads.len(),
            ..DigestReport::default()
        };
        let started = std::time::Instant::now();
        let mut complete = true;
        for (merchant, mut anchors) in by_merchant {
            if started.elapsed() >= DIGEST_TIME_BUDGET {
                complete = false;
                break;
            }
            let last = repo::digest_head(self.table.as_ref(), &merchant).await?;
            // A run that crashed after this merchant's digest: what it covered is not repeated.
            if let Some(last) = &last {
                let times = &updated[&merchant];
                let kept: Vec<Anchor> = anchors
                    .iter()
                    .zip(times)
                    .filter(|(_, t)| **t > last.through)
                    .map(|(a, _)| a.clone())
                    .collect();
                anchors = kept;
            }
            if anchors.is_empty() {
                continue;
            }
            anchors.sort_by(|a, b| a.chain.cmp(&b.chain));
            let digest = Digest {
                merchant: merchant.clone(),
                seq: last.as_ref().map_or(1, |l| l.seq + 1),
                after,
                through,
                anchors,
                created_at: now,
                prev_hash: last.as_ref().map_or_else(|| GENESIS.to_owned(), |l| l.hash.clone()),
                hash: String::new(),
            }
            .seal();
            let head = DigestHead {
                merchant: merchant.clone(),
                seq: digest.seq,
                hash: digest.hash.clone(),
                through,
                version: last.as_ref().map_or(0, |l| l.version),
            };
            let mut batch = Batch::new();
            batch
                .push(Slot::AuditDigest, repo::insert_digest(&digest))
                .push(Slot::AuditHead, repo::write_digest_head(&head));
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => report.digests += 1,
                // Another digester got there first; its digest covers the same heads.
                Err(CommitError::Refused { .. }) => continue,
                Err(CommitError::Store(error)) => return Err(error),
            }
            if let Some(archive) = &self.archive {
                if let Err(error) = archive.put(&digest).await {
                    report.archive_failures += 1;
                    metrics::count("AuditDigestArchiveFailures", 1, &[]);
                    tracing::error!(%error, digest = %digest.name(), "audit digest not archived");
                }
            }
        }
        // Each merchant's digest head says how far it got, so a run cut short repeats nothing.
        if complete {
            let next = Watermark {
                through,
                version: mark.as_ref().map_or(0, |m| m.version),
            };
            match self.table.write(vec![repo::write_watermark(&next)]).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        if report.digests > 0 {
            metrics::count("AuditDigestsWritten", report.digests as u64, &[]);
        }
        Ok(report)
    }
}
