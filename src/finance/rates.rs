//! Exchange rates: a table per tenant (each rate with its source and date), filled from a feed
//! (the ECB's daily reference rates, Open Exchange Rates) or set by hand, and conversion in
//! decimal with banker's rounding to the target's minor units. A conversion may go through
//! other currencies (USD → EUR → JPY with ECB rates); the rates used, their dates and sources
//! come back with the converted amount.

use super::FinanceService;
use super::error::FinanceError;
use super::money;
use crate::fields::FieldError;
use crate::store::{StoreError, now_millis};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use sqlx::Row;
use std::collections::{HashMap, VecDeque};

/// One rate: 1 `base` = `rate` `quote`, as of a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub base: String,
    pub quote: String,
    pub rate: String,
    pub source: String,
    pub as_of: String,
}

/// An amount converted, with what it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Converted {
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// The rate applied (1 unit of the source currency in the target currency).
    pub rate: String,
    /// The rates the conversion went through, in order.
    pub path: Vec<Rate>,
}

fn date(field: &str, s: &str) -> Result<String, FieldError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.to_string())
        .map_err(|_| FieldError::new(field, "must be a date, YYYY-MM-DD"))
}

fn positive(field: &str, s: &str) -> Result<Decimal, FieldError> {
    let d = s
        .trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(s.trim()));
    match d {
        Ok(d) if d > Decimal::ZERO => Ok(d.normalize()),
        _ => Err(FieldError::new(field, "must be a positive decimal")),
    }
}

fn code(field: &str, c: &str) -> Result<String, FieldError> {
    money::currency(c)
        .map(|c| c.code().to_owned())
        .ok_or_else(|| FieldError::new(field, "must be an ISO 4217 currency code"))
}

/// Rates from the ECB's reference-rate XML (daily, 90-day or full history): 1 EUR = rate.
pub fn parse_ecb(xml: &str) -> Result<Vec<Rate>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut day: Option<String> = None;
    let mut rates = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"Cube" => {
                let mut currency = None;
                let mut rate = None;
                for a in e.attributes().flatten() {
                    let value = a
                        .unescape_value()
                        .map_err(|e| format!("ECB XML: {e}"))?
                        .into_owned();
                    match a.key.local_name().as_ref() {
                        b"time" => {
                            day = Some(
                                date("time", &value)
                                    .map_err(|_| format!("ECB XML: bad date `{value}`"))?,
                            )
                        }
                        b"currency" => currency = Some(value),
                        b"rate" => rate = Some(value),
                        _ => {}
                    }
                }
                if let (Some(c), Some(r)) = (currency, rate) {
                    let as_of = day.clone().ok_or("ECB XML: a rate outside a dated Cube")?;
                    let quote = code("currency", &c)
                        .map_err(|_| format!("ECB XML: unknown currency `{c}`"))?;
                    let rate = positive("rate", &r)
                        .map_err(|_| format!("ECB XML: bad rate `{r}` for {c}"))?;
                    rates.push(Rate {
                        base: "EUR".into(),
                        quote,
                        rate: rate.to_string(),
                        source: "ecb".into(),
                        as_of,
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("ECB XML: {e}")),
            _ => {}
        }
    }
    if rates.is_empty() {
        return Err("ECB XML: no rates in the document".into());
    }
    Ok(rates)
}

/// Rates from an Open Exchange Rates `latest.json` or `historical/*.json` answer. Its rates are
/// JSON numbers; they are read from their text, never through a float.
pub fn parse_oxr(json: &str) -> Result<Vec<Rate>, String> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        timestamp: i64,
        base: String,
        #[serde(borrow)]
        rates: HashMap<String, &'a serde_json::value::RawValue>,
    }
    let answer: Answer =
        serde_json::from_str(json).map_err(|e| format!("Open Exchange Rates JSON: {e}"))?;
    let as_of = chrono::DateTime::from_timestamp(answer.timestamp, 0)
        .ok_or("Open Exchange Rates JSON: bad timestamp")?
        .date_naive()
        .to_string();
    let base = code("base", &answer.base).map_err(|_| format!("unknown base `{}`", answer.base))?;
    let mut rates = Vec::new();
    for (c, raw) in answer.rates {
        // Currencies ISO 4217 does not know (BTC, CLF…) are skipped, not refused.
        let Ok(quote) = code("rates", &c) else {
            continue;
        };
        if quote == base {
            continue;
        }
        let rate = positive("rate", raw.get()).map_err(|_| format!("bad rate for {c}"))?;
        rates.push(Rate {
            base: base.clone(),
            quote,
            rate: rate.to_string(),
            source: "openexchangerates".into(),
            as_of: as_of.clone(),
        });
    }
    rates.sort_by(|a, b| a.quote.cmp(&b.quote));
    Ok(rates)
}

impl FinanceService {
    /// Stores rates (a rate of the same pair, date and source is replaced); how many.
    pub async fn put_rates(&self, tenant: &str, rates: &[Rate]) -> Result<usize, FinanceError> {
        let now = now_millis();
        let mut queries = Vec::with_capacity(rates.len());
        for r in rates {
            queries.push(
                sqlx::query(
                    "INSERT INTO fin_rates (tenant_id, base, quote, as_of, source, rate, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, base, quote, as_of, source) \
                     DO UPDATE SET rate = excluded.rate, created_at_ms = excluded.created_at_ms",
                )
                .bind(tenant.to_owned())
                .bind(r.base.clone())
                .bind(r.quote.clone())
                .bind(r.as_of.clone())
                .bind(r.source.clone())
                .bind(r.rate.clone())
                .bind(now),
            );
        }
        self.db.write_group(queries).await?;
        Ok(rates.len())
    }

    /// One rate set by hand, checked.
    pub fn rate_input(
        base: &str,
        quote: &str,
        rate: &str,
        as_of: &str,
        source: &str,
    ) -> Result<Rate, FinanceError> {
        let mut problems = Vec::new();
        let base = code("base", base)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        let quote = code("quote", quote)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        let rate = positive("rate", rate)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        let as_of = date("asOf", as_of)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        if !base.is_empty() && base == quote {
            problems.push(FieldError::new("quote", "must differ from base"));
        }
        if source.is_empty() || source.len() > 64 {
            problems.push(FieldError::new("source", "must be 1 to 64 characters"));
        }
        if !problems.is_empty() {
            return Err(FinanceError::Validation(problems));
        }
        Ok(Rate {
            base,
            quote,
            rate: rate.to_string(),
            source: source.to_owned(),
            as_of,
        })
    }

    /// The latest rate of each pair on or before `on` (a date; all dates when `None`).
    pub async fn rates(&self, tenant: &str, on: Option<&str>) -> Result<Vec<Rate>, FinanceError> {
        let rows = sqlx::query(
            "SELECT base, quote, rate, source, as_of FROM fin_rates WHERE tenant_id = $1 \
             AND as_of <= $2 ORDER BY base, quote, as_of DESC, created_at_ms DESC",
        )
        .bind(tenant)
        .bind(on.unwrap_or("9999-12-31"))
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let mut latest: Vec<Rate> = Vec::new();
        for r in rows {
            let rate = Rate {
                base: r.get(0),
                quote: r.get(1),
                rate: r.get(2),
                source: r.get(3),
                as_of: r.get(4),
            };
            if latest
                .last()
                .is_none_or(|l| l.base != rate.base || l.quote != rate.quote)
            {
                latest.push(rate);
            }
        }
        Ok(latest)
    }

    /// `amount` minor units of `from` in `to`, at the latest rates on or before `on`: through
    /// the fewest rates (either direction), in decimal, rounded half to even to `to`'s minor
    /// units. `NotFound` when the table cannot reach `to` from `from`.
    pub async fn convert(
        &self,
        tenant: &str,
        amount: i64,
        from: &str,
        to: &str,
        on: Option<&str>,
    ) -> Result<Converted, FinanceError> {
        let mut problems = Vec::new();
        let from = code("from", from)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        let to = code("to", to)
            .map_err(|e| problems.push(e))
            .unwrap_or_default();
        if !problems.is_empty() {
            return Err(FinanceError::Validation(problems));
        }
        if from == to {
            return Ok(Converted {
                amount,
                currency: to,
                rate: "1".into(),
                path: Vec::new(),
            });
        }
        let rates = self.rates(tenant, on).await?;
        let path = route(&rates, &from, &to)
            .ok_or_else(|| FinanceError::NotFound(format!("no rate reaches {to} from {from}")))?;
        let mut rate = Decimal::ONE;
        let mut current = from.clone();
        for r in &path {
            let value: Decimal = r
                .rate
                .parse()
                .map_err(|_| StoreError::decode("a stored rate"))?;
            rate = if r.base == current {
                current = r.quote.clone();
                rate.checked_mul(value)
            } else {
                current = r.base.clone();
                rate.checked_div(value)
            }
            .ok_or_else(|| {
                FinanceError::Validation(vec![FieldError::new("amount", "too large to convert")])
            })?;
        }
        let places = |c: &str| money::currency(c).map_or(2, money::places);
        let overflow =
            || FinanceError::Validation(vec![FieldError::new("amount", "too large to convert")]);
        let major = Decimal::new(amount, places(&from));
        let converted = major
            .checked_mul(rate)
            .ok_or_else(overflow)?
            .round_dp_with_strategy(places(&to), RoundingStrategy::MidpointNearestEven);
        let minor = converted
            .checked_mul(Decimal::from(10i64.pow(places(&to))))
            .and_then(|m| i64::try_from(m.trunc()).ok())
            .ok_or_else(overflow)?;
        Ok(Converted {
            amount: minor,
            currency: to,
            rate: rate.round_dp(12).normalize().to_string(),
            path,
        })
    }
}

/// The shortest chain of rates from `from` to `to` (each usable either way).
fn route(rates: &[Rate], from: &str, to: &str) -> Option<Vec<Rate>> {
    let mut previous: HashMap<String, (String, usize)> = HashMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = Vec::new();
            let mut c = to.to_owned();
            while c != from {
                let (p, i) = previous.get(&c)?.clone();
                path.push(rates[i].clone());
                c = p;
            }
            path.reverse();
            return Some(path);
        }
        for (i, r) in rates.iter().enumerate() {
            let next = if r.base == at {
                &r.quote
            } else if r.quote == at {
                &r.base
            } else {
                continue;
            };
            if next != from && !previous.contains_key(next) {
                previous.insert(next.clone(), (at.clone(), i));
                queue.push_back(next.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fx_rates/");

    #[test]
    fn the_ecb_daily_file_reads_as_euro_rates() {
        let xml = std::fs::read_to_string(format!("{DIR}ecb_eurofxref-daily_2015-01-07.xml"))
            .expect("fixture");
        let rates = parse_ecb(&xml).expect("parses");
        assert_eq!(rates.len(), 31);
        let usd = rates.iter().find(|r| r.quote == "USD").expect("USD");
        assert_eq!(
            (usd.base.as_str(), usd.rate.as_str(), usd.as_of.as_str()),
            ("EUR", "1.1831", "2015-01-07")
        );
        let gbp = rates.iter().find(|r| r.quote == "GBP").expect("GBP");
        assert_eq!(
            gbp.rate, "0.7823",
            "decimal text, trailing zero dropped, no float"
        );
        let one_line = "<a:Envelope xmlns:a=\"x\"><Cube><Cube time=\"2026-11-30\"><Cube currency=\"JPY\" rate=\"163.5\"/></Cube></Cube></a:Envelope>";
        assert_eq!(
            parse_ecb(one_line).expect("double quotes, one line")[0].rate,
            "163.5"
        );
        assert!(
            parse_ecb("<Cube><Cube currency='USD' rate='1'/></Cube>").is_err(),
            "no date"
        );
        assert!(parse_ecb("not xml at all <<").is_err());
    }

    #[test]
    fn open_exchange_rates_read_from_their_text() {
        let json = std::fs::read_to_string(format!("{DIR}openexchangerates_latest_USD_base.json"))
            .expect("fixture");
        let rates = parse_oxr(&json).expect("parses");
        assert!(
            rates
                .iter()
                .all(|r| r.base == "USD" && r.source == "openexchangerates")
        );
        assert!(rates.iter().any(|r| r.quote == "EUR"));
        assert!(parse_oxr(r#"{"timestamp": 0, "base": "USD", "rates": {"EUR": -1}}"#).is_err());
    }

    #[test]
    fn routes_go_either_way_through_other_currencies() {
        let r = |b: &str, q: &str| Rate {
            base: b.into(),
            quote: q.into(),
            rate: "2".into(),
            source: "t".into(),
            as_of: "2026-01-01".into(),
        };
        let rates = [r("EUR", "USD"), r("EUR", "JPY"), r("GBP", "CHF")];
        assert_eq!(route(&rates, "USD", "JPY").map(|p| p.len()), Some(2));
        assert_eq!(route(&rates, "USD", "EUR").map(|p| p.len()), Some(1));
        assert!(route(&rates, "USD", "CHF").is_none());
    }
}
