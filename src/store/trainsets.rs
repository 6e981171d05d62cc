//! Typed queries on trainsets, examples and splits.

use super::Store;
use crate::data::{Example, Part, SplitFractions, Trainset};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// A stored trainset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainsetRow {
    pub id: i64,
    pub name: String,
    pub content_hash: String,
    pub source: String,
    pub format: String,
    pub n_examples: i64,
    pub created_at: String,
}

/// A stored example with its database id.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExampleRow {
    pub id: i64,
    pub idx: i64,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub hash: String,
    pub category: Option<String>,
    pub style: Option<String>,
}

impl ExampleRow {
    /// The example as the data module sees it (for stats and splits).
    pub fn to_example(&self) -> Example {
        Example {
            index: self.idx as usize,
            line: None,
            fields: self.fields.clone(),
        }
    }
}

/// A stored split.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitRow {
    pub id: i64,
    pub trainset_id: i64,
    pub seed: i64,
    pub train_frac: f64,
    pub val_frac: f64,
    pub created_at: String,
    pub counts: [i64; 3],
}

fn trainset_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrainsetRow> {
    Ok(TrainsetRow {
        id: r.get(0)?,
        name: r.get(1)?,
        content_hash: r.get(2)?,
        source: r.get(3)?,
        format: r.get(4)?,
        n_examples: r.get(5)?,
        created_at: r.get(6)?,
    })
}

const TRAINSET_COLS: &str = "id, name, content_hash, source, format, n_examples, created_at";

impl Store {
    /// Stores a validated trainset in one transaction. Returns the row and whether
    /// it was new: content already stored (by hash) returns the existing row.
    pub fn import_trainset(
        &mut self,
        name: &str,
        source: &str,
        trainset: &Trainset,
    ) -> Result<(TrainsetRow, bool)> {
        let hash = trainset.content_hash();
        // IMMEDIATE takes the write lock up front, so two importers serialise
        // instead of failing on lock upgrade.
        let tx = self.write_transaction()?;
        let existing = tx
            .query_row(
                &format!("SELECT {TRAINSET_COLS} FROM trainsets WHERE content_hash = ?1"),
                [&hash],
                trainset_from_row,
            )
            .optional()?;
        if let Some(row) = existing {
            tx.commit()?;
            return Ok((row, false));
        }
        let created_at = now();
        tx.execute(
            "INSERT INTO trainsets (name, content_hash, source, format, n_examples, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                hash,
                source,
                trainset.format.as_str(),
                trainset.examples.len() as i64,
                created_at
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT INTO examples (trainset_id, idx, fields_json, hash, category, style, source) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, ex) in trainset.examples.iter().enumerate() {
                stmt.execute(params![
                    id,
                    i as i64,
                    serde_json::Value::Object(ex.fields.clone()).to_string(),
                    ex.hash(),
                    ex.category(),
                    ex.style(),
                    ex.source()
                ])?;
            }
        }
        tx.commit()?;
        Ok((
            TrainsetRow {
                id,
                name: name.to_string(),
                content_hash: hash,
                source: source.to_string(),
                format: trainset.format.as_str().to_string(),
                n_examples: trainset.examples.len() as i64,
                created_at,
            },
            true,
        ))
    }

    /// All trainsets, newest first.
    pub fn list_trainsets(&self) -> Result<Vec<TrainsetRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TRAINSET_COLS} FROM trainsets ORDER BY id DESC"
        ))?;
        let rows = stmt
            .query_map([], trainset_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Finds a trainset by id, name (newest with that name) or hash prefix.
    pub fn find_trainset(&self, key: &str) -> Result<TrainsetRow> {
        let by_id = key.parse::<i64>().ok();
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {TRAINSET_COLS} FROM trainsets \
                     WHERE id = ?1 OR name = ?2 OR (length(?2) >= 8 AND content_hash LIKE ?2 || '%') \
                     ORDER BY (id = ?1) DESC, id DESC LIMIT 1"
                ),
                params![by_id, key],
                trainset_from_row,
            )
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            kind: "trainset",
            name: key.to_string(),
        })
    }

    /// Examples of a trainset in file order.
    pub fn examples(&self, trainset_id: i64) -> Result<Vec<ExampleRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, idx, fields_json, hash, category, style FROM examples \
             WHERE trainset_id = ?1 ORDER BY idx",
        )?;
        let rows = stmt
            .query_map([trainset_id], |r| {
                let text: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, text, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<rusqlite::Result<Vec<(i64, i64, String, String, Option<String>, Option<String>)>>>()?;
        rows.into_iter()
            .map(|(id, idx, text, hash, category, style)| {
                let fields = match serde_json::from_str(&text)? {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                Ok(ExampleRow {
                    id,
                    idx,
                    fields,
                    hash,
                    category,
                    style,
                })
            })
            .collect()
    }

    /// Creates (or finds) the seeded, stratified split of a stored trainset.
    pub fn split_trainset(
        &mut self,
        trainset_id: i64,
        seed: u64,
        fractions: SplitFractions,
    ) -> Result<SplitRow> {
        fractions.validate()?;
        let rows = self.examples(trainset_id)?;
        let examples: Vec<Example> = rows.iter().map(ExampleRow::to_example).collect();
        let parts = crate::data::stratified_split(&examples, fractions, seed);
        let assignments: Vec<(i64, Part)> = rows.iter().map(|e| e.id).zip(parts).collect();
        self.save_split(trainset_id, seed, fractions, &assignments)
    }

    /// Records a split (idempotent for the same trainset, seed and fractions).
    pub fn save_split(
        &mut self,
        trainset_id: i64,
        seed: u64,
        fractions: SplitFractions,
        assignments: &[(i64, Part)],
    ) -> Result<SplitRow> {
        let tx = self.write_transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM splits WHERE trainset_id = ?1 AND seed = ?2 \
                 AND train_frac = ?3 AND val_frac = ?4",
                params![trainset_id, seed as i64, fractions.train, fractions.val],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO splits (trainset_id, seed, train_frac, val_frac, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        trainset_id,
                        seed as i64,
                        fractions.train,
                        fractions.val,
                        now()
                    ],
                )?;
                let id = tx.last_insert_rowid();
                let mut stmt = tx.prepare(
                    "INSERT INTO split_assignments (split_id, example_id, part) VALUES (?1, ?2, ?3)",
                )?;
                for (example_id, part) in assignments {
                    stmt.execute(params![id, example_id, part.as_str()])?;
                }
                id
            }
        };
        tx.commit()?;
        self.split(id)
    }

    /// A split with its part sizes.
    pub fn split(&self, split_id: i64) -> Result<SplitRow> {
        let mut row = self
            .conn
            .query_row(
                "SELECT id, trainset_id, seed, train_frac, val_frac, created_at FROM splits WHERE id = ?1",
                [split_id],
                |r| {
                    Ok(SplitRow {
                        id: r.get(0)?,
                        trainset_id: r.get(1)?,
                        seed: r.get(2)?,
                        train_frac: r.get(3)?,
                        val_frac: r.get(4)?,
                        created_at: r.get(5)?,
                        counts: [0; 3],
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "split",
                name: split_id.to_string(),
            })?;
        for (k, part) in [Part::Train, Part::Val, Part::Test].iter().enumerate() {
            row.counts[k] = self.conn.query_row(
                "SELECT COUNT(*) FROM split_assignments WHERE split_id = ?1 AND part = ?2",
                params![split_id, part.as_str()],
                |r| r.get(0),
            )?;
        }
        Ok(row)
    }

    /// The newest split of a trainset, if any.
    pub fn latest_split(&self, trainset_id: i64) -> Result<Option<SplitRow>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM splits WHERE trainset_id = ?1 ORDER BY id DESC LIMIT 1",
                [trainset_id],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| self.split(id)).transpose()
    }

    /// Example ids of one part of a split, in trainset order.
    pub fn split_part(&self, split_id: i64, part: Part) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.example_id FROM split_assignments a JOIN examples e ON e.id = a.example_id \
             WHERE a.split_id = ?1 AND a.part = ?2 ORDER BY e.idx",
        )?;
        let ids = stmt
            .query_map(params![split_id, part.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }
}
