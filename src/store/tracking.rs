//! The timeline store: events (deduplicated by their key), the waybill's tracking columns, the
//! poll schedule and the receipts of carrier pushes.

use super::writer::WriteQuery;
use super::{Db, Dialect, now_rfc3339};
use crate::store::error::StoreError;
use carriers::{TrackingEvent, TrackingStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A waybill as tracking sees it.
#[derive(Debug, Clone)]
pub struct TrackRow {
    pub id: String,
    pub tenant_id: String,
    pub reference_number: String,
    pub waybill_number: String,
    pub carrier: String,
    pub cancelled: bool,
    pub created_at: String,
    pub version: i64,
    pub last_mile_carrier: Option<String>,
    pub last_mile_tracking_number: Option<String>,
    pub last_mile_known: bool,
    pub request_json: String,
    pub tracking_status: Option<String>,
}

/// The same row with `$rank` as `match_rank`, for look-ups that try several kinds of number and
/// keep the best kind (`ORDER BY match_rank`).
macro_rules! select_ranked_track_row {
    ($rank:literal, $where:literal) => {
        concat!(
            "SELECT id, tenant_id, reference_number, waybill_number, carrier, state, created_at, \
             tracking_version, last_mile_carrier, last_mile_tracking_number, last_mile_unknown, \
             request_json, tracking_status, ",
            $rank,
            " AS match_rank FROM waybills WHERE state IN ('created', 'cancelled') AND ",
            $where
        )
    };
}

macro_rules! select_track_row {
    ($where:literal) => {
        concat!(
            "SELECT id, tenant_id, reference_number, waybill_number, carrier, state, created_at, \
             tracking_version, last_mile_carrier, last_mile_tracking_number, last_mile_unknown, \
             request_json, tracking_status FROM waybills WHERE state IN ('created', 'cancelled') AND ",
            $where
        )
    };
}

fn track_row(row: &AnyRow) -> Result<TrackRow, StoreError> {
    Ok(TrackRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        reference_number: row.try_get("reference_number")?,
        waybill_number: row.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
        carrier: row.try_get("carrier")?,
        cancelled: row.try_get::<String, _>("state")? == "cancelled",
        created_at: row.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
        version: row.try_get("tracking_version")?,
        last_mile_carrier: row.try_get("last_mile_carrier")?,
        last_mile_tracking_number: row.try_get("last_mile_tracking_number")?,
        last_mile_known: row.try_get::<i64, _>("last_mile_unknown")? == 0,
        request_json: row.try_get("request_json")?,
        tracking_status: row.try_get("tracking_status")?,
    })
}

/// The waybill a carrier's push names: its row as read, or what a caller keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushMatch<T = TrackRow> {
    One {
        row: Box<T>,
        by_last_mile: bool,
    },
    /// No waybill of this carrier has the number.
    None,
    /// Two waybills have it as their best match.
    Ambiguous,
}

impl<T> PushMatch<T> {
    /// The same match with `f` applied to the row.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> PushMatch<U> {
        match self {
            Self::One { row, by_last_mile } => PushMatch::One {
                row: Box::new(f(*row)),
                by_last_mile,
            },
            Self::None => PushMatch::None,
            Self::Ambiguous => PushMatch::Ambiguous,
        }
    }
}

/// One stored event with the carrier that reported it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub source: String,
    pub occurred_at_ms: i64,
    pub event: TrackingEvent,
}

/// The events of one waybill as a JSON array of 12-element arrays, newest first: one row
/// instead of a row per event (each row is a hand-over between threads in the SQLite driver).
macro_rules! events_json_sqlite {
    ($id:literal) => {
        concat!(
            "(SELECT COALESCE(json_group_array(json_array(source, status_code, occurred_at_ms, \
             occurred_at, status, description, timezone, address, city, state, postal_code, \
             country)), '[]') FROM (SELECT * FROM tracking_events WHERE waybill_id = ",
            $id,
            " ORDER BY occurred_at_ms DESC, received_at DESC))"
        )
    };
}

macro_rules! events_json_postgres {
    ($id:literal) => {
        concat!(
            "(SELECT COALESCE(json_agg(json_build_array(source, status_code, occurred_at_ms, \
             occurred_at, status, description, timezone, address, city, state, postal_code, \
             country) ORDER BY occurred_at_ms DESC, received_at DESC), '[]')::text \
             FROM tracking_events WHERE waybill_id = ",
            $id,
            ")"
        )
    };
}

type EventColumns = (
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn parse_events(json: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let rows: Vec<EventColumns> = serde_json::from_str(json).map_err(StoreError::decode)?;
    rows.into_iter()
        .map(
            |(
                source,
                code,
                ms,
                at,
                status,
                description,
                timezone,
                address,
                city,
                state,
                postal_code,
                country,
            )| {
                let occurred_at =
                    chrono::DateTime::parse_from_rfc3339(&at).map_err(StoreError::decode)?;
                Ok(StoredEvent {
                    source,
                    occurred_at_ms: ms,
                    event: TrackingEvent {
                        status_code: code,
                        status: TrackingStatus::parse(&status),
                        description,
                        occurred_at,
                        timezone,
                        address,
                        city,
                        state,
                        postal_code,
                        country,
                    },
                })
            },
        )
        .collect()
}

/// What a poll claim hands the poller.
#[derive(Debug, Clone)]
pub struct DuePoll {
    pub id: String,
    pub carrier: String,
    pub waybill_number: String,
    pub created_at: String,
}

/// `INSERT INTO tracking_events ... VALUES (...), (...)` for 1 to 64 rows, built once.
fn insert_events_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=64)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|i| {
                        let params: Vec<String> =
                            (1..=14).map(|j| format!("${}", i * 14 + j)).collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                format!(
                    "INSERT INTO tracking_events (waybill_id, source, status_code, \
                     occurred_at_ms, occurred_at, status, description, timezone, address, city, \
                     state, postal_code, country, received_at) VALUES {} ON CONFLICT \
                     (waybill_id, source, status_code, occurred_at_ms) DO NOTHING",
                    values.join(", ")
                )
            })
            .collect()
    });
    &all[rows.clamp(1, 64) - 1]
}

impl Db {
    /// A tenant's waybill by waybill, reference or last-mile tracking number.
    pub async fn track_row(
        &self,
        tenant_id: &str,
        number: &str,
    ) -> Result<Option<TrackRow>, StoreError> {
        // One indexed look-up per kind of number (an OR across the three columns would make
        // SQLite scan the tenant's rows). A number that is one waybill's number and another's
        // reference is the waybill number's, always; then references, then last-mile numbers.
        self.first_track_row(
            concat!(
                "SELECT * FROM (",
                select_ranked_track_row!("0", "tenant_id = $1 AND waybill_number = $2"),
                " UNION ALL ",
                select_ranked_track_row!("1", "tenant_id = $1 AND reference_number = $2"),
                " UNION ALL ",
                select_ranked_track_row!("2", "tenant_id = $1 AND last_mile_tracking_number = $2"),
                ") m ORDER BY match_rank, created_at LIMIT 1"
            ),
            tenant_id,
            number,
        )
        .await
    }

    async fn first_track_row(
        &self,
        sql: &'static str,
        first: &str,
        second: &str,
    ) -> Result<Option<TrackRow>, StoreError> {
        sqlx::query(sql)
            .bind(first)
            .bind(second)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(track_row)
            .transpose()
    }

    pub async fn track_row_by_id(&self, id: &str) -> Result<Option<TrackRow>, StoreError> {
        sqlx::query(select_track_row!("id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(track_row)
            .transpose()
    }

    /// The waybill a carrier's push is about: by our waybill number, the carrier's tracking
    /// number, or the last-mile number it was handed on under.
    pub async fn track_row_for_carrier(
        &self,
        carrier: &str,
        number: &str,
    ) -> Result<PushMatch, StoreError> {
        // The carrier's own waybill or tracking number first; a last-mile number only of the
        // carrier's own waybills or of waybills it carries the last mile of. Two waybills at
        // the best rank are a number that means two things: refused, not guessed.
        let rows = sqlx::query(concat!(
            "SELECT * FROM (",
            select_ranked_track_row!("0", "carrier = $1 AND waybill_number = $2"),
            " UNION ALL ",
            select_ranked_track_row!("1", "carrier = $1 AND tracking_number = $2"),
            " UNION ALL ",
            select_ranked_track_row!(
                "2",
                "last_mile_tracking_number = $2 AND (carrier = $1 OR \
                 LOWER(REPLACE(last_mile_carrier, ' ', '_')) = $1)"
            ),
            ") m ORDER BY match_rank, created_at LIMIT 2"
        ))
        .bind(carrier)
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        let ranked = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("match_rank")?, track_row(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(match ranked.as_slice() {
            [] => PushMatch::None,
            [(a, _), (b, _), ..] if a == b => PushMatch::Ambiguous,
            [(rank, row), ..] => PushMatch::One {
                row: Box::new(row.clone()),
                by_last_mile: *rank == 2,
            },
        })
    }

    /// The waybill's events, newest first.
    pub async fn events(&self, waybill_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = match self.dialect {
            Dialect::Sqlite => concat!("SELECT ", events_json_sqlite!("$1")),
            Dialect::Postgres => concat!("SELECT ", events_json_postgres!("$1")),
        };
        let row = sqlx::query(sql)
            .bind(waybill_id)
            .fetch_one(&self.pool)
            .await?;
        parse_events(&row.try_get::<String, _>(0)?)
    }

    /// A waybill and its events, newest first, in one statement and one row (one consistent
    /// read; the events come as one JSON array rather than a row each).
    pub async fn track_row_with_events(
        &self,
        waybill_id: &str,
    ) -> Result<Option<(TrackRow, Vec<StoredEvent>)>, StoreError> {
        let sql = match self.dialect {
            Dialect::Sqlite => concat!(
                "SELECT id, tenant_id, reference_number, waybill_number, carrier, state, \
                 created_at, tracking_version, last_mile_carrier, last_mile_tracking_number, \
                 last_mile_unknown, request_json, tracking_status, ",
                events_json_sqlite!("w.id"),
                " FROM waybills w WHERE id = $1 AND state IN ('created', 'cancelled')"
            ),
            Dialect::Postgres => concat!(
                "SELECT id, tenant_id, reference_number, waybill_number, carrier, state, \
                 created_at, tracking_version, last_mile_carrier, last_mile_tracking_number, \
                 last_mile_unknown, request_json, tracking_status, ",
                events_json_postgres!("w.id"),
                " FROM waybills w WHERE id = $1 AND state IN ('created', 'cancelled')"
            ),
        };
        let Some(r) = sqlx::query(sql)
            .bind(waybill_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let events = parse_events(&r.try_get::<String, _>(13)?)?;
        Ok(Some((track_row(&r)?, events)))
    }

    /// Statements storing events not seen before (same source, code and instant = the same
    /// event); each statement's row count is how many were new.
    pub fn insert_events(
        waybill_id: &str,
        source: &str,
        events: &[TrackingEvent],
    ) -> Vec<WriteQuery> {
        let now = now_rfc3339();
        // 14 parameters per row; stay well under SQLite's and PostgreSQL's parameter limits.
        events
            .chunks(64)
            .map(|chunk| {
                let mut query = sqlx::query(insert_events_sql(chunk.len()));
                for e in chunk {
                    query = query
                        .bind(waybill_id.to_owned())
                        .bind(source.to_owned())
                        .bind(e.status_code.clone())
                        .bind(e.occurred_at.timestamp_millis())
                        .bind(e.occurred_at.to_rfc3339())
                        .bind(e.status.as_str())
                        .bind(e.description.clone())
                        .bind(e.timezone.clone())
                        .bind(e.address.clone())
                        .bind(e.city.clone())
                        .bind(e.state.clone())
                        .bind(e.postal_code.clone())
                        .bind(e.country.clone())
                        .bind(now.clone());
                }
                query
            })
            .collect()
    }

    /// Records the waybill's last mile and bumps its tracking version, when it differs from the
    /// stored one (stored events bump the version themselves, by trigger).
    pub fn record_last_mile(
        waybill_id: &str,
        carrier: &str,
        number: &str,
        known: bool,
    ) -> WriteQuery {
        sqlx::query(
            "UPDATE waybills SET tracking_version = tracking_version + 1, last_mile_carrier = $2, \
             last_mile_tracking_number = $3, last_mile_unknown = $4, updated_at = $5 WHERE id = $1 \
             AND (last_mile_carrier IS DISTINCT FROM $2 \
             OR last_mile_tracking_number IS DISTINCT FROM $3)",
        )
        .bind(waybill_id.to_owned())
        .bind(carrier.to_owned())
        .bind(number.to_owned())
        .bind(i64::from(!known))
        .bind(now_rfc3339())
    }

    /// Records a push delivery id (nothing when it was taken before).
    /// Records the derived status, unless a newer version was stored meanwhile.
    pub async fn set_tracking_status(
        &self,
        waybill_id: &str,
        version: i64,
        status: Option<TrackingStatus>,
    ) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "UPDATE waybills SET tracking_status = $1 WHERE id = $2 AND tracking_version = $3",
            )
            .bind(status.map(|s| s.as_str()))
            .bind(waybill_id.to_owned())
            .bind(version),
        )
        .await
        .map(drop)
    }

    /// Claims up to `limit` parcels whose poll is due, moving each out of the due set until
    /// `lease_until` in the same statement: two instances never claim the same parcel in one
    /// round, and a claim whose poller died comes due again when its lease ends.
    pub async fn claim_due_polls(
        &self,
        now_ms: i64,
        limit: u32,
        lease_until: i64,
    ) -> Result<Vec<DuePoll>, StoreError> {
        let sql = match self.dialect {
            Dialect::Postgres => {
                "UPDATE waybills SET next_poll_at = $1 WHERE id IN (SELECT id FROM waybills \
                 WHERE next_poll_at <= $2 ORDER BY next_poll_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, carrier, waybill_number, created_at"
            }
            Dialect::Sqlite => {
                "UPDATE waybills SET next_poll_at = $1 WHERE id IN (SELECT id FROM waybills \
                 WHERE next_poll_at <= $2 ORDER BY next_poll_at LIMIT $3) \
                 RETURNING id, carrier, waybill_number, created_at"
            }
        };
        let rows = self
            .write_fetch_all(
                sqlx::query(sql)
                    .bind(lease_until)
                    .bind(now_ms)
                    .bind(i64::from(limit)),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DuePoll {
                    id: r.try_get("id")?,
                    carrier: r.try_get("carrier")?,
                    waybill_number: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                    created_at: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// When to poll next (`None`: never again).
    pub async fn schedule_poll(&self, waybill_id: &str, at: Option<i64>) -> Result<(), StoreError> {
        self.write(
            sqlx::query("UPDATE waybills SET next_poll_at = $1 WHERE id = $2")
                .bind(at)
                .bind(waybill_id.to_owned()),
        )
        .await
        .map(drop)
    }
}
