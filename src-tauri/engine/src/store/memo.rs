//! The page memo of an entity's last complete pass (ADR 0015): what each page's reply was, so that an unchanged
//! re-sync skips parsing and transforming it.

use super::*;

/// One page as the pass that wrote it saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoPage {
    /// The page's cursor (JSON).
    pub cursor: String,
    /// The digest of the reply (body and next-page link).
    pub digest: u128,
    /// Where the next page starts (JSON; None: this was the last page).
    pub next: Option<String>,
    pub records: u64,
    /// The listing check's fingerprint of the page (None: the page was empty).
    pub fingerprint: Option<u64>,
    /// The mapping the page was transformed under (see `run::memo::config_of`).
    pub config: String,
}

/// A `page_memo` row as read back: cursor, digest, next, records, fingerprint, config.
type MemoRow = (String, Vec<u8>, Option<String>, i64, Option<i64>, String);

/// The last complete pass whose memo may be trusted, and the target table's change count as it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedPass {
    pub pass: String,
    pub changes: i64,
}

impl Store {
    /// The entity's sealed pass, if its memo may be trusted.
    pub async fn sealed_memo(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<SealedPass>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT pass, changes FROM page_memo_pass WHERE pipeline = ? AND entity = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(pass, changes)| SealedPass { pass, changes }))
    }

    /// The pages `pass` remembered under `config` (without their keys).
    pub async fn memo_pages(
        &self,
        pipeline: &str,
        entity: &str,
        pass: &str,
        config: &str,
    ) -> Result<Vec<MemoPage>, StoreError> {
        let rows: Vec<MemoRow> = sqlx::query_as(
            "SELECT cursor, digest, next, records, fingerprint, config FROM page_memo
             WHERE pipeline = ? AND entity = ? AND pass = ? AND config = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .bind(pass)
        .bind(config)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(cursor, digest, next, records, fingerprint, config)| {
                Some(MemoPage {
                    cursor,
                    digest: u128::from_be_bytes(digest.try_into().ok()?),
                    next,
                    records: u64::try_from(records).ok()?,
                    fingerprint: fingerprint.map(|f| f as u64),
                    config,
                })
            })
            .collect())
    }

    /// The key hashes of a remembered page (16 bytes each).
    pub async fn memo_keys(
        &self,
        pipeline: &str,
        entity: &str,
        cursor: &str,
    ) -> Result<Vec<u128>, StoreError> {
        let keys: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT keys FROM page_memo WHERE pipeline = ? AND entity = ? AND cursor = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .bind(cursor)
        .fetch_optional(&self.pool)
        .await?;
        Ok(keys
            .unwrap_or_default()
            .chunks_exact(16)
            .filter_map(|k| k.try_into().ok().map(u128::from_be_bytes))
            .collect())
    }

    /// Forgets which pass the memo belongs to: from now on until a pass seals it again, nothing is skipped.
    pub async fn unseal_memo(&self, pipeline: &str, entity: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM page_memo_pass WHERE pipeline = ? AND entity = ?")
            .bind(pipeline)
            .bind(entity)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers the pages of a written batch as `pass` saw them (with their keys), and moves the pages the batch
    /// skipped as unchanged over to `pass`.
    pub async fn remember_pages(
        &self,
        pipeline: &str,
        entity: &str,
        pass: &str,
        pages: &[(MemoPage, Vec<u128>)],
        unchanged: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (page, keys) in pages {
            let keys: Vec<u8> = keys.iter().flat_map(|k| k.to_be_bytes()).collect();
            sqlx::query(
                "INSERT OR REPLACE INTO page_memo
                 (pipeline, entity, cursor, pass, config, digest, next, records, fingerprint, keys)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(&page.cursor)
            .bind(pass)
            .bind(&page.config)
            .bind(page.digest.to_be_bytes().to_vec())
            .bind(&page.next)
            .bind(page.records as i64)
            .bind(page.fingerprint.map(|f| f as i64))
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        }
        for cursor in unchanged {
            sqlx::query(
                "UPDATE page_memo SET pass = ? WHERE pipeline = ? AND entity = ? AND cursor = ?",
            )
            .bind(pass)
            .bind(pipeline)
            .bind(entity)
            .bind(cursor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Seals `pass` as the one whose memo the next pass may trust, and forgets the pages it did not see.
    pub async fn seal_memo(
        &self,
        pipeline: &str,
        entity: &str,
        sealed: &SealedPass,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM page_memo WHERE pipeline = ? AND entity = ? AND pass <> ?")
            .bind(pipeline)
            .bind(entity)
            .bind(&sealed.pass)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO page_memo_pass (pipeline, entity, pass, changes) VALUES (?, ?, ?, ?)",
        )
        .bind(pipeline)
        .bind(entity)
        .bind(&sealed.pass)
        .bind(sealed.changes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the entity's memo (a pass that cannot be trusted as a whole).
    pub async fn forget_memo(&self, pipeline: &str, entity: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["page_memo_pass", "page_memo"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE pipeline = ? AND entity = ?"
            ))
            .bind(pipeline)
            .bind(entity)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(cursor: &str, config: &str) -> MemoPage {
        MemoPage {
            cursor: cursor.into(),
            digest: u128::MAX - 7,
            next: Some("{\"Offset\":5}".into()),
            records: 5,
            fingerprint: Some(u64::MAX),
            config: config.into(),
        }
    }

    #[tokio::test]
    async fn a_sealed_pass_keeps_only_its_pages_and_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let keys = vec![1u128, u128::MAX, 42];
        store
            .remember_pages("p", "e", "run-1", &[(page("a", "c1"), keys.clone())], &[])
            .await
            .unwrap();
        store
            .remember_pages("p", "e", "run-1", &[(page("b", "c1"), vec![7])], &[])
            .await
            .unwrap();
        // The next pass skips "a" unchanged and writes "c"; "b" is not in it any more.
        store
            .remember_pages(
                "p",
                "e",
                "run-2",
                &[(page("c", "c2"), vec![])],
                &["a".into()],
            )
            .await
            .unwrap();
        assert_eq!(store.sealed_memo("p", "e").await.unwrap(), None);
        let sealed = SealedPass {
            pass: "run-2".into(),
            changes: 3,
        };
        store.seal_memo("p", "e", &sealed).await.unwrap();
        assert_eq!(store.sealed_memo("p", "e").await.unwrap(), Some(sealed));
        let pages = store.memo_pages("p", "e", "run-2", "c1").await.unwrap();
        assert_eq!(pages, vec![page("a", "c1")]);
        assert_eq!(store.memo_keys("p", "e", "a").await.unwrap(), keys);
        assert!(store.memo_keys("p", "e", "b").await.unwrap().is_empty());
        store.forget_memo("p", "e").await.unwrap();
        assert_eq!(store.sealed_memo("p", "e").await.unwrap(), None);
        assert!(store.memo_keys("p", "e", "a").await.unwrap().is_empty());
    }
}
