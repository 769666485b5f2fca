//! Login and registration throttling. The policy (docs/security.md, "Login protection"):
//!
//! - An attempt is counted *before* its password is checked (a [`Reservation`]), atomically
//!   with the check of the limits, so parallel guesses cannot all slip in under them, whichever
//!   server process they reach. A success takes its own attempt back and clears the count it
//!   was made under.
//! - Failures are counted per (user id, address): `max_failed_logins` are free, after that each
//!   attempt waits 1 s, 2 s, 4 s, ... (at most `failed_login_window`) after the latest failure.
//!   A delay, not a wall: the owner can always get in, later.
//! - Per address across user ids, the same delays start after four times as many failures (a
//!   spray over many ids from one place). Addresses are counted by network for IPv6 (a /64,
//!   what one subscriber gets), so rotating through one's own addresses gains nothing.
//! - Per user id across addresses the same, but only for an attempt whose own (user id,
//!   address) has already failed in the window: an owner trying from a new browser at an
//!   address that has not been guessing from gets in, however many others guess; a distributed
//!   guesser gets one attempt per network before this delay holds it too.
//! - A browser holding the user's *known device* cookie (signed, set at a successful login) is
//!   counted only per (user id, device): failures of others, from anywhere, never slow it.
//! - Registrations count per address with the same delays, and wait while the address waits
//!   for login.
//!
//! Failures leave the counts `failed_login_window` after they happened. Times are wall-clock
//! (unix milliseconds), the one clock several processes share. Behind a reverse proxy the client
//! address is the proxy's.
//!
//! This file is the policy; the counts live behind [`Counters`], chosen by the session engine
//! (`crate::engines::Engine::shared`; by default a table in the accounts' file). Each makes one
//! reservation atomic across every process using it. When the counters cannot be
//! reached, an attempt is refused ([`Refused::Unavailable`], the "Accounts unavailable" page):
//! failing open would let a guesser through unthrottled by taking the engine down.
//!
//! One file: the policy above is one set of rules over one [`Plan`]; the counters that carry it
//! out are in each engine's folder, the in-process ones in `in_process.rs`, the tests in
//! `tests.rs`.

mod in_process;

pub use in_process::InProcessCounters;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many more attempts an address (or a user id from all addresses) has than one
/// (user id, address) pair before delays start: several people behind one NAT.
const WIDE_FACTOR: u32 = 4;
/// The first delay, in milliseconds; each further attempt doubles it.
const FIRST_DELAY_MS: u64 = 1_000;

/// Why the counters could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// The engine keeping the counters failed.
    #[error("login throttle: {0}")]
    Engine(#[from] crate::engines::error::EngineError),
    #[error("login throttle: {0}")]
    Open(#[from] crate::users::UserError),
    #[error("login throttle: no random attempt name: {0}")]
    Random(#[from] getrandom::Error),
    #[error("login throttle: the check could not run: {0}")]
    Blocking(String),
}

impl From<ThrottleError> for crate::engines::error::EngineError {
    fn from(e: ThrottleError) -> Self {
        Self::new(e)
    }
}

/// Why an attempt was not let through.
#[derive(Debug)]
pub enum Refused {
    /// The limits hold it back for this long.
    Wait(Duration),
    /// The counters could not be reached: refused, not let through unthrottled.
    Unavailable(ThrottleError),
}

impl Refused {
    /// How long to wait, when the limits refused.
    pub fn wait(&self) -> Option<Duration> {
        match self {
            Self::Wait(wait) => Some(*wait),
            Self::Unavailable(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// One user id from one address, for browsers without the user's device cookie.
    UserAddress(String, String),
    /// One user id from one known device.
    UserDevice(String, String),
    /// One user id from every browser without its device cookie.
    User(String),
    /// One address, every user id, browsers without a device cookie.
    Address(String),
    /// Registrations from one address.
    Registrations(String),
}

impl Key {
    /// The key's name in the counters. User ids hold no `:` (see `users::valid_id`), so the
    /// parts cannot run into each other.
    fn name(&self) -> String {
        match self {
            Self::UserAddress(user, address) => format!("ua:{user}:{address}"),
            Self::UserDevice(user, device) => format!("ud:{user}:{device}"),
            Self::User(user) => format!("u:{user}"),
            Self::Address(address) => format!("a:{address}"),
            Self::Registrations(address) => format!("r:{address}"),
        }
    }
}

/// What a key means to one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Counted and checked; its own failures gate [`Role::Gated`] keys.
    Pair,
    /// Counted and checked.
    Counted,
    /// Counted, but checked only when a [`Role::Pair`] key of the same reservation has failed.
    Gated,
    /// Checked only.
    Checked,
}

/// One key of a reservation, as the counters see it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// Attempts without delay.
    pub free: u32,
    pub role: Role,
}

/// A key's attempts within the window: how many, and the latest (unix ms).
#[derive(Debug, Clone, Copy, Default)]
pub struct Recent {
    pub count: u64,
    pub latest: u64,
}

/// One reservation for the counters: check `entries` at `now` and, if none must wait, add an
/// attempt `member` at `now` to the counted ones.
#[derive(Debug, Clone)]
pub struct Plan {
    pub entries: Vec<Entry>,
    pub now: u64,
    pub window: u64,
    /// Unique among attempts: what [`Counters::give_back`] removes.
    pub member: String,
}

impl Plan {
    /// How long the reservation must wait, given each entry's recent attempts (in the order of
    /// `entries`, already trimmed to the window). An engine's script computes the same.
    pub fn wait(&self, recent: &[Recent]) -> Option<Duration> {
        let pair_has_failed = self
            .entries
            .iter()
            .zip(recent)
            .any(|(e, r)| e.role == Role::Pair && r.count > 0);
        self.entries
            .iter()
            .zip(recent)
            .filter(|(e, _)| pair_has_failed || e.role != Role::Gated)
            .filter_map(|(e, r)| self.wait_of(e.free, r))
            .max()
            .map(Duration::from_millis)
    }

    fn wait_of(&self, free: u32, recent: &Recent) -> Option<u64> {
        let over = recent.count.checked_sub(u64::from(free))?;
        let delay = u32::try_from(over)
            .ok()
            .and_then(|over| 1u64.checked_shl(over))
            .and_then(|factor| FIRST_DELAY_MS.checked_mul(factor))
            .unwrap_or(self.window)
            .min(self.window);
        let until = recent.latest.saturating_add(delay);
        Some(until.saturating_sub(self.now)).filter(|w| *w > 0)
    }

    /// The keys an attempt is added to.
    pub fn counted(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.role != Role::Checked)
    }

    /// Whether an attempt at `at` is still within the window at `now`.
    pub fn in_window(&self, at: u64) -> bool {
        self.now.saturating_sub(at) < self.window
    }
}

/// Where attempts are counted. Every method blocks (a file or an engine): call it off the async
/// workers, as the `*_async` methods of [`LoginThrottle`] do.
pub trait Counters: Send + Sync {
    /// Atomically (across every process using these counters): trims each entry to the window,
    /// asks [`Plan::wait`], and if nothing must wait adds `plan.member` to the counted entries.
    fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError>;
    /// Takes the attempt `member` back from `keys`; the keys in `clear` lose every attempt.
    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), ThrottleError>;
}

/// Who is trying: the address, and the known-device id when the browser holds a device cookie
/// for this very user id.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub address: Option<&'a str>,
    pub device: Option<&'a str>,
}

/// A login attempt let through. It counts as a failure unless it is given back with
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::abandoned`].
#[derive(Debug)]
#[must_use = "an attempt that is dropped counts as a failure"]
pub struct Reservation {
    keys: Vec<Key>,
    member: String,
}

/// The throttle: the policy over its counters.
pub struct LoginThrottle {
    free: u32,
    window: Duration,
    counters: Box<dyn Counters>,
}

/// The key a client address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6
/// address as its IPv4 one), an IPv6 address by its /64 network.
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// `at` as unix milliseconds (0 before 1970, which no clock in service shows).
fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A name for one attempt that no other attempt, in any process, has.
fn unique_member(now: u64) -> Result<String, ThrottleError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{now}-{}", hex::encode(bytes)))
}

impl LoginThrottle {
    /// Counters in this process's memory.
    pub fn new(max_failed_logins: u32, window: Duration) -> Self {
        Self::with_counters(
            max_failed_logins,
            window,
            Box::new(InProcessCounters::default()),
        )
    }

    pub fn with_counters(
        max_failed_logins: u32,
        window: Duration,
        counters: Box<dyn Counters>,
    ) -> Self {
        Self {
            free: max_failed_logins,
            window,
            counters,
        }
    }

    fn entry(&self, key: &Key, role: Role) -> Entry {
        let free = match key {
            Key::UserAddress(..) | Key::UserDevice(..) => self.free,
            Key::User(_) | Key::Address(_) | Key::Registrations(_) => {
                self.free.saturating_mul(WIDE_FACTOR)
            }
        };
        Entry {
            name: key.name(),
            free,
            role,
        }
    }

    /// Lets a login attempt for `user_id` (case-folded) through and counts it, or says why not.
    pub fn reserve_login(
        &self,
        user_id: &str,
        origin: Origin<'_>,
        now: SystemTime,
    ) -> Result<Reservation, Refused> {
        let keys = match origin.device {
            Some(device) => vec![(
                Key::UserDevice(user_id.to_owned(), device.to_owned()),
                Role::Counted,
            )],
            None => {
                let address = origin.address.unwrap_or("unknown").to_owned();
                vec![
                    (
                        Key::UserAddress(user_id.to_owned(), address.clone()),
                        Role::Pair,
                    ),
                    (Key::User(user_id.to_owned()), Role::Gated),
                    (Key::Address(address), Role::Counted),
                ]
            }
        };
        self.reserve(keys, now)
    }

    /// Counts a registration from `address`, or says why not.
    pub fn reserve_registration(
        &self,
        address: Option<&str>,
        now: SystemTime,
    ) -> Result<(), Refused> {
        let address = address.unwrap_or("unknown").to_owned();
        self.reserve(
            vec![
                (Key::Registrations(address.clone()), Role::Counted),
                (Key::Address(address), Role::Checked),
            ],
            now,
        )
        .map(drop)
    }

    fn reserve(&self, keys: Vec<(Key, Role)>, now: SystemTime) -> Result<Reservation, Refused> {
        let now = unix_ms(now);
        let member = unique_member(now).map_err(Refused::Unavailable)?;
        let plan = Plan {
            entries: keys.iter().map(|(k, role)| self.entry(k, *role)).collect(),
            now,
            window: u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX),
            member,
        };
        match self.counters.reserve(&plan) {
            Ok(Some(wait)) => Err(Refused::Wait(wait)),
            Ok(None) => Ok(Reservation {
                keys: keys
                    .into_iter()
                    .filter(|(_, role)| *role != Role::Checked)
                    .map(|(k, _)| k)
                    .collect(),
                member: plan.member,
            }),
            Err(e) => Err(Refused::Unavailable(e)),
        }
    }

    /// The attempt was a successful login: it is taken back everywhere, and the failures of its
    /// (user id, address) or (user id, device) are forgotten.
    pub fn succeeded(&self, attempt: Reservation) {
        let (clear, keep): (Vec<&Key>, Vec<&Key>) = attempt
            .keys
            .iter()
            .partition(|k| matches!(k, Key::UserAddress(..) | Key::UserDevice(..)));
        self.give_back(&attempt, &keep, &clear);
    }

    /// The attempt could not be judged (the user database failed): it does not count.
    pub fn abandoned(&self, attempt: Reservation) {
        let all: Vec<&Key> = attempt.keys.iter().collect();
        self.give_back(&attempt, &all, &[]);
    }

    fn give_back(&self, attempt: &Reservation, keys: &[&Key], clear: &[&Key]) {
        let names = |keys: &[&Key]| keys.iter().map(|k| k.name()).collect::<Vec<_>>();
        if let Err(e) = self
            .counters
            .give_back(&names(keys), &names(clear), &attempt.member)
        {
            // The attempt then counts as a failure until it leaves the window: a delay at
            // worst, never a way in.
            tracing::warn!(error = %e, "could not give a login attempt back");
        }
    }

    /// [`Self::reserve_login`] now, on a blocking thread.
    pub async fn reserve_login_async(
        self: Arc<Self>,
        user_id: String,
        address: Option<String>,
        device: Option<String>,
    ) -> Result<Reservation, Refused> {
        blocking(move || {
            let origin = Origin {
                address: address.as_deref(),
                device: device.as_deref(),
            };
            self.reserve_login(&user_id, origin, SystemTime::now())
        })
        .await
    }

    /// [`Self::reserve_registration`] now, on a blocking thread.
    pub async fn reserve_registration_async(
        self: Arc<Self>,
        address: Option<String>,
    ) -> Result<(), Refused> {
        blocking(move || self.reserve_registration(address.as_deref(), SystemTime::now())).await
    }

    /// [`Self::succeeded`] on a blocking thread.
    pub async fn succeeded_async(self: Arc<Self>, attempt: Reservation) {
        let _ = actix_web::web::block(move || self.succeeded(attempt)).await;
    }

    /// [`Self::abandoned`] on a blocking thread.
    pub async fn abandoned_async(self: Arc<Self>, attempt: Reservation) {
        let _ = actix_web::web::block(move || self.abandoned(attempt)).await;
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Refused> + Send + 'static,
) -> Result<T, Refused> {
    match actix_web::web::block(work).await {
        Ok(result) => result,
        Err(e) => Err(Refused::Unavailable(ThrottleError::Blocking(e.to_string()))),
    }
}

#[cfg(test)]
pub(crate) mod tests;
