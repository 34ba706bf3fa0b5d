//! A lease kept in the object store, for work that must run one at a time
//! across Lambda invocations (a monitor check writing its history, a build
//! of one model). Reserved concurrency cannot be relied on for that: a new
//! account has too little of it to reserve any.
//!
//! A lease is a series of grants, `<prefix>/<generation>.json`, each created
//! with a conditional create (S3 `If-None-Match: *`), so of two contenders
//! for the next generation exactly one creates it. The newest grant says
//! who holds the lease and until when. A contender takes the lease by
//! creating the next generation once the newest grant is released, expired,
//! or its own (a retried invocation of the same run). Taking it deletes the
//! grants older than the one it replaced, so a prefix holds three at most:
//! the replaced grant, the holder's, and the holder's release.
//!
//! A holder that outlives its lease (a hung invocation) is not stopped: the
//! time to live must cover the longest hold, as the function's timeout does.

use crate::ports::{ObjectStore, PutOutcome};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How many times a claim re-reads the newest grant after losing a race
/// for the next generation before it gives up (each loss means another
/// contender now holds the lease, so one re-read settles it as a rule).
const MAX_RACES: usize = 8;

/// One grant of a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who holds it: a run or invocation id.
    pub owner: String,
    /// When it lapses, epoch ms.
    pub expires_ms: i64,
    /// Given back before it lapsed.
    #[serde(default)]
    pub released: bool,
}

/// What a claim got.
#[derive(Debug)]
pub enum Claim {
    /// The lease is ours until [`Lease::expires_ms`].
    Held(Lease),
    /// Someone else holds it.
    Busy {
        /// The holder.
        owner: String,
        /// When its grant lapses, epoch ms.
        until_ms: i64,
    },
}

/// A lease held.
#[derive(Debug)]
pub struct Lease {
    prefix: String,
    generation: u64,
    /// The holder.
    pub owner: String,
    /// When it lapses, epoch ms.
    pub expires_ms: i64,
}

fn grant_key(prefix: &str, generation: u64) -> String {
    format!("{prefix}/{generation:020}.json")
}

fn generation_of(prefix: &str, key: &str) -> Option<u64> {
    key.strip_prefix(prefix)?
        .strip_prefix('/')?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// Whether a contender `owner` may take over from `newest` at `now_ms`.
pub fn free_for(newest: &Grant, owner: &str, now_ms: i64) -> bool {
    newest.released || newest.expires_ms <= now_ms || newest.owner == owner
}

async fn create(
    store: &dyn ObjectStore,
    prefix: &str,
    generation: u64,
    grant: &Grant,
) -> Result<PutOutcome> {
    let key = grant_key(prefix, generation);
    let body = serde_json::to_vec(grant).map_err(|e| Error::encoding(&key, e))?;
    store.put_if_absent(&key, body).await
}

/// Claims the lease at `prefix` for `owner` for `ttl_ms` from `now_ms`.
pub async fn acquire(
    store: &dyn ObjectStore,
    prefix: &str,
    owner: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Claim> {
    for _ in 0..MAX_RACES {
        let mut generations: Vec<u64> = store
            .list(&format!("{prefix}/"))
            .await?
            .iter()
            .filter_map(|o| generation_of(prefix, &o.key))
            .collect();
        generations.sort_unstable();
        let newest = generations.last().copied();
        if let Some(g) = newest {
            let key = grant_key(prefix, g);
            let Some(body) = store.get(&key).await? else {
                // Deleted by a taker between the listing and the read.
                continue;
            };
            let grant: Grant =
                serde_json::from_slice(&body).map_err(|e| Error::encoding(&key, e))?;
            if !free_for(&grant, owner, now_ms) {
                return Ok(Claim::Busy {
                    owner: grant.owner,
                    until_ms: grant.expires_ms,
                });
            }
        }
        let next = newest.map_or(1, |g| g + 1);
        let grant = Grant {
            owner: owner.to_string(),
            expires_ms: now_ms.saturating_add(ttl_ms),
            released: false,
        };
        if create(store, prefix, next, &grant).await? == PutOutcome::AlreadyExists {
            continue;
        }
        for old in generations.iter().filter(|g| **g + 1 < next) {
            if let Err(e) = store.delete(&grant_key(prefix, *old)).await {
                tracing::warn!(error = %e, lease = prefix, "An old lease grant could not be deleted; the next taker tries again.");
            }
        }
        return Ok(Claim::Held(Lease {
            prefix: prefix.to_string(),
            generation: next,
            owner: grant.owner,
            expires_ms: grant.expires_ms,
        }));
    }
    Err(Error::Store {
        op: "lease",
        bucket: store.location(),
        key: prefix.to_string(),
        message: format!("lost the race for the lease {MAX_RACES} times in a row"),
        retryable: true,
    })
}

impl Lease {
    /// Gives the lease back: the next grant says it is free. If the lease
    /// lapsed and another holder took it meanwhile, that grant stands.
    pub async fn release(self, store: &dyn ObjectStore) -> Result<()> {
        let grant = Grant {
            owner: self.owner,
            expires_ms: self.expires_ms,
            released: true,
        };
        if create(store, &self.prefix, self.generation + 1, &grant).await?
            == PutOutcome::AlreadyExists
        {
            tracing::warn!(lease = %self.prefix, "The lease lapsed and was taken over before it was released.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_free_once_released_expired_or_its_own() {
        let g = Grant {
            owner: "a".into(),
            expires_ms: 100,
            released: false,
        };
        assert!(!free_for(&g, "b", 99));
        assert!(free_for(&g, "b", 100));
        assert!(free_for(&g, "a", 50));
        assert!(free_for(
            &Grant {
                released: true,
                ..g.clone()
            },
            "b",
            0
        ));
        assert_eq!(generation_of("l", &grant_key("l", 42)), Some(42));
        assert_eq!(generation_of("l", "l/x.json"), None);
        assert_eq!(generation_of("l", "lx/00000000000000000001.json"), None);
    }
}
