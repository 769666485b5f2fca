//! Duration keys: how they are written (whole seconds or a string with a unit; network timeouts
//! also in fractions of a second), and the bounds each may take, with the reason.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

pub(crate) const DAY: u64 = 24 * 60 * 60;
const MAX_LIFETIME_DAYS: i64 = 400;
/// Browsers keep a cookie at most 400 days (RFC 6265bis), so a longer session could never be
/// presented again; the cap also keeps every deadline far inside the `time` crate's range.
pub(crate) const MAX_LIFETIME: u64 = MAX_LIFETIME_DAYS.unsigned_abs() * DAY;
pub(crate) const MAX_TTL: time::Duration = time::Duration::days(MAX_LIFETIME_DAYS);
/// Expired session files keep users' data on disk until swept; sweeping less than daily only lets
/// them pile up (reads refuse expired sessions whatever this is).
pub(crate) const MAX_CLEANUP_INTERVAL: u64 = DAY;
/// Failures are remembered for the whole window: a day already holds a guesser to
/// `max_failed_logins` tries a day, and a longer memory only keeps the counters, and any delay
/// they put on the account's owner, for longer.
pub(crate) const MAX_FAILED_LOGIN_WINDOW: u64 = DAY;

/// A positive duration of at most `MAX` seconds: integer seconds (`30`) or a string with a unit
/// (`"30s"`, `"12h"`, `"31d"`).
pub(crate) struct Seconds<const MAX: u64>(pub(crate) Duration);

/// What a duration key accepts, its maximum included (written with a unit when it has a whole one).
fn duration_allowed(max: u64) -> String {
    let with_unit = [(DAY, 'd'), (3600, 'h'), (60, 'm')]
        .into_iter()
        .find(|&(unit, _)| max.is_multiple_of(unit))
        .map_or(format!("{max}s"), |(unit, c)| format!("{}{c}", max / unit));
    format!(
        "expected a positive whole number of seconds, or a string such as \"30s\", \"15m\", \
         \"12h\", \"31d\"; at most \"{with_unit}\" ({max})"
    )
}

impl<'de, const MAX: u64> Deserialize<'de> for Seconds<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: u64>;
        impl<const MAX: u64> V<MAX> {
            fn bounded<E: de::Error>(secs: Option<u64>) -> Result<Seconds<MAX>, E> {
                match secs {
                    Some(n) if (1..=MAX).contains(&n) => Ok(Seconds(Duration::from_secs(n))),
                    _ => Err(E::custom(duration_allowed(MAX))),
                }
            }
        }
        impl<const MAX: u64> Visitor<'_> for V<MAX> {
            type Value = Seconds<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&duration_allowed(MAX))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Seconds<MAX>, E> {
                Self::bounded(u64::try_from(n).ok())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Seconds<MAX>, E> {
                Self::bounded(Some(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Seconds<MAX>, E> {
                let secs = humantime::parse_duration(s.trim())
                    .ok()
                    .filter(|d| d.subsec_nanos() == 0)
                    .map(|d| d.as_secs());
                Self::bounded(secs)
            }
        }
        d.deserialize_any(V::<MAX>)
    }
}

/// The shortest network timeout: a loopback round trip on a loaded machine can take a few
/// milliseconds, so less would fail healthy requests.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// The longest network timeout: a request waiting a minute on its store is already lost to its
/// user, and holds a worker and a connection all that time.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// A network timeout from [`MIN_TIMEOUT`] to [`MAX_TIMEOUT`]: seconds, whole or not (`2`, `0.5`),
/// or a string with a unit (`"500ms"`, `"2s"`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeout(pub(crate) Duration);

fn timeout_allowed() -> String {
    format!(
        "expected seconds from {} to {}, such as 2, 0.5 or \"500ms\"",
        MIN_TIMEOUT.as_secs_f64(),
        MAX_TIMEOUT.as_secs_f64()
    )
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn bounded<E: de::Error>(d: Option<Duration>) -> Result<Timeout, E> {
                match d {
                    Some(d) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) => Ok(Timeout(d)),
                    _ => Err(E::custom(timeout_allowed())),
                }
            }
        }
        impl Visitor<'_> for V {
            type Value = Timeout;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&timeout_allowed())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Timeout, E> {
                Self::bounded(u64::try_from(n).ok().map(Duration::from_secs))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Timeout, E> {
                Self::bounded(Some(Duration::from_secs(n)))
            }
            fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Timeout, E> {
                Self::bounded(Duration::try_from_secs_f64(secs).ok())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timeout, E> {
                Self::bounded(humantime::parse_duration(s.trim()).ok())
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration key that may also be `"none"` (no such bound): `OrNone(None)`.
pub(crate) struct OrNone<T>(pub(crate) Option<T>);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OrNone<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        if value.as_str().is_some_and(|s| s.trim() == "none") {
            return Ok(Self(None));
        }
        T::deserialize(value)
            .map(|t| Self(Some(t)))
            .map_err(|e| de::Error::custom(format!("{}, or \"none\"", e.message())))
    }
}
