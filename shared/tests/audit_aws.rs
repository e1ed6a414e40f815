//! The audit trail on the AWS adapters (moto, `MOTO_ENDPOINT`): chains appended concurrently
//! through DynamoDB transactions, digests archived to an S3 bucket with Object Lock, and
//! `verify` over both, intact and tampered.

mod support;

use std::sync::Arc;

use checkout::audit::chain::Problem;
use checkout::audit::digest::{Digest, DigestArchive, Digester, DIGEST_LAG_SECONDS};
use checkout::audit::s3::{self, S3Archive};
use checkout::audit::{repo, verify, AuditLog, EntryKind, NewEntry};
use checkout::clock::ManualClock;
use checkout::store::{Condition, Write};

fn entry(chain: &str, source: &str) -> NewEntry {
    NewEntry {
        chain: chain.into(),
        source: source.into(),
        merchant: Some("shop-aws".into()),
        kind: EntryKind::ApiCall,
        action: "POST /v1/payments".into(),
        actor: Default::default(),
        resource: None,
        outcome: "202".into(),
        detail: serde_json::json!({"status": 202}),
        occurred_at: chrono::Utc::now(),
    }
}

/// A bucket as the template makes it: Object Lock on, compliance mode by default.
async fn locked_bucket(client: &aws_sdk_s3::Client) -> String {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    };
    let bucket = support::unique("audit").to_lowercase();
    client
        .create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    client
        .put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("object lock: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    bucket
}

#[tokio::test]
async fn chains_and_digests_on_dynamodb_and_s3_verify_and_tampering_is_named() {
    let table = support::dynamo_table().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let log = AuditLog::new(table.clone(), clock.clone());
    // Concurrent appenders to one chain (a payment's events, its call and its callback at once)
    // and to others.
    let appends = (0..12).map(|i| {
        let log = log.clone();
        async move {
            let chain = if i % 3 == 0 {
                "pay_aws_b".to_owned()
            } else {
                "pay_aws_a".to_owned()
            };
            log.append(entry(&chain, &format!("src_aws_{i}"))).await
        }
    });
    for result in futures::future::join_all(appends).await {
        assert!(
            matches!(result, Ok(checkout::audit::Appended::Appended(_))),
            "{result:?}"
        );
    }
    // The same source again appends nothing.
    assert_eq!(
        log.append(entry("pay_aws_a", "src_aws_1")).await.unwrap(),
        checkout::audit::Appended::AlreadyRecorded
    );
    let client = s3::client(&support::moto_config().await);
    let bucket = locked_bucket(&client).await;
    let archive = Arc::new(S3Archive::new(client, bucket));
    clock.advance(chrono::Duration::seconds(DIGEST_LAG_SECONDS + 1));
    let digester = Digester {
        table: table.clone(),
        clock: clock.clone(),
        archive: Some(archive.clone()),
    };
    let report = digester.run().await.unwrap();
    assert_eq!(
        (report.heads, report.digests, report.archive_failures),
        (2, 1, 0),
        "{report:?}"
    );
    let archived = archive
        .get("shop-aws", 1)
        .await
        .unwrap()
        .expect("the digest is archived");
    let digest: Digest = serde_json::from_str(&archived).unwrap();
    assert!(digest.is_intact() && digest.anchors.len() == 2);
    assert_eq!(archive.get("shop-aws", 2).await.unwrap(), None);
    // Write-once: the same digest again is fine, another one under its key is refused.
    archive.put(&digest).await.unwrap();
    let mut forged = digest.clone();
    forged.anchors.pop();
    let forged = forged.seal();
    assert!(archive.put(&forged).await.is_err(), "a digest is never replaced");
    assert_eq!(
        archive.get("shop-aws", 1).await.unwrap().as_deref(),
        Some(archived.as_str())
    );

    let intact = verify::verify(table.as_ref(), Some(archive.as_ref())).await.unwrap();
    assert!(intact.is_intact(), "{:?}", intact.broken);
    assert_eq!((intact.chains, intact.entries, intact.archived), (2, 12, 1));

    // An entry edited in the table.
    let chain = repo::whole_chain(table.as_ref(), "pay_aws_a").await.unwrap();
    let mut edited = chain[4].clone();
    edited.outcome = "500".into();
    let Write::Put { item, .. } = repo::insert_entry(&edited) else {
        unreachable!()
    };
    table
        .write(vec![Write::Put {
            item,
            condition: Condition::Always,
        }])
        .await
        .unwrap();
    let broken = verify::verify(table.as_ref(), Some(archive.as_ref()))
        .await
        .unwrap()
        .broken
        .expect("the edit is found");
    assert_eq!(
        (broken.chain.as_str(), broken.seq, broken.problem),
        ("pay_aws_a", 5, Problem::Edited)
    );
}
