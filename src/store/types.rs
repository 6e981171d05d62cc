//! The closed vocabularies stored in text columns: run kind and status (one
//! status vocabulary for runs and jobs), evaluation kind and split. Each is an
//! enum that reads and writes its column as lowercase text, so a typo is a
//! compile error here and a foreign value a clear error when reading.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Declares a text-backed enum with its names, parsing and SQL conversions.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    FromSqlError::Other(
                        format!(
                            "`{text}` is not a {}; expected one of {}",
                            stringify!($name),
                            $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        )
                        .into(),
                    )
                })
            }
        }
    };
}

text_enum!(
    /// Where a run or job is in its life. Runs and jobs share it.
    Status {
        /// Queued, not started.
        Pending => "pending",
        Running => "running",
        /// Finished its work.
        Completed => "completed",
        /// Ended by an error; the row's `error` says which.
        Failed => "failed",
        /// Stopped on request before finishing; not resumable by design.
        Cancelled => "cancelled",
        /// Stopped (Ctrl-C, a budget, a restart) with its work so far stored; resumable.
        Interrupted => "interrupted",
    }
);

impl Status {
    /// Whether the run has ended (a terminal state).
    pub fn is_finished(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }
}

text_enum!(
    /// What a run does.
    RunKind {
        Optimize => "optimize",
        Eval => "eval",
        Predict => "predict",
        /// Rows written by benchmarks.
        Bench => "bench",
        /// `trainset synthesize`: an LM asked for new examples.
        Synthesize => "synthesize",
    }
);

text_enum!(
    /// Whether an evaluation covers its whole example set or a sample of it.
    EvalKind {
        Full => "full",
        Minibatch => "minibatch",
    }
);

text_enum!(
    /// Which examples an evaluation ran on: a part of a split, or all of a trainset.
    Split {
        Train => "train",
        Val => "val",
        Test => "test",
        All => "all",
    }
);

impl From<crate::data::Part> for Split {
    fn from(p: crate::data::Part) -> Self {
        match p {
            crate::data::Part::Train => Split::Train,
            crate::data::Part::Val => Split::Val,
            crate::data::Part::Test => Split::Test,
        }
    }
}

text_enum!(
    /// How an A/B test picks a variant for a request.
    AbStrategy {
        /// A stable hash of the test's salt, the key and each variant: the
        /// same key always gets the same variant while the weights stand.
        Sticky => "sticky",
        /// A fresh weighted draw per request.
        Random => "random",
    }
);

text_enum!(
    /// Where an A/B test is in its life.
    AbStatus {
        /// Routing requests and taking outcomes.
        Active => "active",
        /// Ended with a winner; routes and outcomes are refused.
        Concluded => "concluded",
    }
);

text_enum!(
    /// What an A/B outcome observed: a score, or a binary success or failure.
    OutcomeKind {
        Score => "score",
        Success => "success",
        Failure => "failure",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        for k in EvalKind::ALL {
            assert_eq!(EvalKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(Split::parse("val"), Some(Split::Val));
        assert_eq!(Status::parse("succeeded"), None);
    }

    #[test]
    fn a_foreign_stored_value_is_a_clear_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT 'done?'", [], |r| r.get::<_, Status>(0))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`done?` is not a Status; expected one of pending, running"),
            "{err}"
        );
    }
}
