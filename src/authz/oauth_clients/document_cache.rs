//! Client metadata documents already fetched, by URL, for as long as their
//! HTTP caching headers allow (the draft and MCP: the AS "SHOULD cache ...
//! respecting HTTP cache headers"), bounded in time and number. Only
//! documents that passed every check get in: a failure is fetched again.

use std::collections::HashMap;

use crate::proto::oauth::client::ClientInfo;

/// Most documents kept.
pub const CAPACITY: usize = 1_000;
/// Longest a document is kept, whatever its headers say (seconds).
pub const MAX_AGE: i64 = 24 * 3600;
/// How long a document without freshness headers is kept (seconds): a
/// heuristic freshness (RFC 9111 §4.2.2), short so a changed document is
/// read again soon.
pub const DEFAULT_AGE: i64 = 300;

/// The cache.
#[derive(Debug)]
pub struct DocumentCache {
    entries: HashMap<String, (ClientInfo, i64)>,
    capacity: usize,
}

impl DocumentCache {
    /// An empty cache of `capacity` documents.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The client of the document at `url`, if still fresh at `now`.
    pub fn get(&mut self, url: &str, now: i64) -> Option<ClientInfo> {
        match self.entries.get(url) {
            Some((client, until)) if *until > now => Some(client.clone()),
            Some(_) => {
                self.entries.remove(url);
                None
            }
            None => None,
        }
    }

    /// Keeps `client` for `lifetime` seconds from `now` (nothing for 0).
    /// When full, stale entries go first, then the one expiring soonest.
    pub fn put(&mut self, url: &str, client: ClientInfo, lifetime: i64, now: i64) {
        let lifetime = lifetime.clamp(0, MAX_AGE);
        if lifetime == 0 || self.capacity == 0 {
            self.entries.remove(url);
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(url) {
            self.entries.retain(|_, (_, until)| *until > now);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries
            .insert(url.to_owned(), (client, now.saturating_add(lifetime)));
    }

    /// Documents kept, and their bytes: the URL and the entry at its
    /// fixed size (the client's strings beyond it not counted).
    pub fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        for url in self.entries.keys() {
            size.add(url.len(), std::mem::size_of::<(ClientInfo, i64)>());
        }
        size
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Seconds a response may be kept, from its `Cache-Control` and `Expires`
/// (RFC 9111 §4.2.1: `max-age` wins over `Expires`; `no-store`,
/// `no-cache` and `private`, which a shared server-side cache should not
/// reuse unchecked, mean 0), at `now`. Neither header: [`DEFAULT_AGE`].
/// Never above [`MAX_AGE`].
pub fn lifetime(cache_control: Option<&str>, expires: Option<&str>, now: i64) -> i64 {
    let mut max_age = None;
    for directive in cache_control.unwrap_or_default().split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if matches!(directive.as_str(), "no-store" | "no-cache" | "private")
            || directive.starts_with("no-cache=")
            || directive.starts_with("private=")
        {
            return 0;
        }
        if let Some(value) = directive.strip_prefix("max-age=") {
            // An unreadable max-age is stale (RFC 9111 §4.2.1).
            max_age = Some(value.trim_matches('"').parse::<i64>().unwrap_or(0));
        }
    }
    let seconds = match (max_age, expires) {
        (Some(age), _) => age,
        // An unreadable Expires is in the past (RFC 9111 §5.3).
        (None, Some(date)) => http_date(date).map_or(0, |at| at.saturating_sub(now)),
        (None, None) => DEFAULT_AGE,
    };
    seconds.clamp(0, MAX_AGE)
}

/// An IMF-fixdate (RFC 9110 §5.6.7: `Sun, 06 Nov 1994 08:49:37 GMT`) as
/// Unix seconds. The obsolete forms are read as unreadable (stale).
pub fn http_date(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    let (_day, dd, mon, yyyy, time, zone) = (
        words.next()?,
        words.next()?,
        words.next()?,
        words.next()?,
        words.next()?,
        words.next()?,
    );
    if zone != "GMT" || words.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = i64::try_from(MONTHS.iter().position(|m| *m == mon)?).ok()? + 1;
    let day: i64 = dd.parse().ok()?;
    let year: i64 = yyyy.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known
/// era arithmetic).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::client::{ClientSource, TokenEndpointAuth};

    fn client(id: &str) -> ClientInfo {
        ClientInfo {
            client_id: id.to_owned(),
            client_name: None,
            redirect_uris: vec![],
            token_endpoint_auth: TokenEndpointAuth::None,
            secret_hash: None,
            jwks: None,
            grant_types: vec![],
            source: ClientSource::MetadataDocument {
                localhost_only: false,
            },
        }
    }

    #[test]
    fn http_dates_read_as_unix_seconds() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("0"), None);
    }

    #[test]
    fn freshness_follows_cache_control_then_expires_and_is_bounded() {
        let now = 784_111_777;
        assert_eq!(lifetime(Some("max-age=60"), None, now), 60);
        assert_eq!(lifetime(Some("public, max-age=600000"), None, now), MAX_AGE);
        assert_eq!(lifetime(Some("no-store"), None, now), 0);
        assert_eq!(lifetime(Some("max-age=60, no-cache"), None, now), 0);
        assert_eq!(lifetime(Some("max-age=x"), None, now), 0);
        assert_eq!(lifetime(Some("max-age=-5"), None, now), 0);
        assert_eq!(
            lifetime(None, Some("Sun, 06 Nov 1994 08:59:37 GMT"), now),
            600
        );
        assert_eq!(lifetime(None, Some("yesterday"), now), 0);
        // max-age wins over Expires.
        assert_eq!(
            lifetime(
                Some("max-age=5"),
                Some("Sun, 06 Nov 1994 08:59:37 GMT"),
                now
            ),
            5
        );
        assert_eq!(lifetime(None, None, now), DEFAULT_AGE);
    }

    #[test]
    fn the_cache_keeps_fresh_documents_only_and_stays_bounded() {
        let mut cache = DocumentCache::new(2);
        cache.put("a", client("a"), 10, 100);
        assert_eq!(cache.get("a", 105).unwrap().client_id, "a");
        assert!(cache.get("a", 110).is_none());
        cache.put("b", client("b"), 0, 100);
        assert!(cache.get("b", 100).is_none());
        cache.put("a", client("a"), 50, 100);
        cache.put("b", client("b"), 20, 100);
        cache.put("c", client("c"), 30, 100);
        assert_eq!(cache.len(), 2);
        // The one expiring soonest made room.
        assert!(cache.get("b", 101).is_none());
        assert!(cache.get("a", 101).is_some() && cache.get("c", 101).is_some());
    }
}
