//! What a URL carries: the list filters (the CLI's flags, in snake case),
//! the refresh interval, and the links built from them.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sayiir_diesel::Status;
use serde::Deserialize;

use crate::Error;
use crate::inspect::ListFilter;

/// Encoded in a path segment or a query value: all but `-._~` and
/// alphanumerics.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The refresh intervals a page offers, in seconds (0 = off).
pub const REFRESH_CHOICES: [u32; 4] = [0, 2, 5, 15];

/// Most rows a page lists.
pub const MAX_LIMIT: u32 = 1000;

/// `text` encoded for a path segment or a query value.
#[must_use]
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A prefix as [`crate::Dashboard::prefix`] accepts it.
pub fn check_prefix(prefix: &str) -> Result<String, Error> {
    let prefix = if prefix == "/" { "" } else { prefix };
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains("//")
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)));
    if ok {
        Ok(prefix.to_owned())
    } else {
        Err(Error::Input(format!(
            "prefix {prefix:?}: expected /segment[/segment…] of letters, digits and -._~"
        )))
    }
}

/// The query string of the workflow list (and of bulk actions): every
/// field optional, blanks ignored, as a browser's GET form sends them.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListParams {
    /// A status name (`InProgress`, `completed`, `in-progress`…).
    pub status: Option<String>,
    /// The definition hash, 64 hex digits.
    pub definition: Option<String>,
    /// A task tag the queue row carries.
    pub tag: Option<String>,
    /// Created longer ago than this (`30s`, `15m`, `2h`, `7d`).
    pub older_than: Option<String>,
    /// Created at most this long ago.
    pub newer_than: Option<String>,
    /// Instance ids starting with this.
    pub prefix: Option<String>,
    /// The keyset cursor: ids after this one.
    pub after: Option<String>,
    /// Rows per page (1–1000, default 50).
    pub limit: Option<String>,
    /// Refresh interval in seconds (pages only).
    pub refresh: Option<String>,
}

fn given(field: Option<&String>) -> Option<&str> {
    field.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl ListParams {
    /// The filter these parameters ask for.
    pub fn filter(&self) -> Result<ListFilter, Error> {
        let age = |name: &str, v: Option<&String>| {
            given(v)
                .map(|t| {
                    crate::duration::parse(t).map_err(|e| Error::Input(format!("{name}: {e}")))
                })
                .transpose()
        };
        let limit = match given(self.limit.as_ref()) {
            None => ListFilter::default().limit,
            Some(t) => t
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::Input(format!("limit {t:?}: expected 1 to {MAX_LIMIT}")))?,
        };
        Ok(ListFilter {
            status: given(self.status.as_ref()).map(parse_status).transpose()?,
            definition: given(self.definition.as_ref())
                .map(parse_hash)
                .transpose()?,
            tag: given(self.tag.as_ref()).map(str::to_owned),
            older_than: age("older_than", self.older_than.as_ref())?,
            newer_than: age("newer_than", self.newer_than.as_ref())?,
            prefix: given(self.prefix.as_ref()).map(str::to_owned),
            after: given(self.after.as_ref()).map(str::to_owned),
            limit,
        })
    }

    /// The filter fields that are set, as `(name, value)` pairs, without
    /// the cursor and the refresh interval.
    pub fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("status", &self.status),
            ("definition", &self.definition),
            ("tag", &self.tag),
            ("older_than", &self.older_than),
            ("newer_than", &self.newer_than),
            ("prefix", &self.prefix),
            ("limit", &self.limit),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v.as_ref()).map(|v| (k, v.to_owned())))
        .collect()
    }
}

/// The refresh interval a `refresh` value asks for (one of
/// [`REFRESH_CHOICES`], else off).
pub fn refresh(value: Option<&String>) -> u32 {
    given(value)
        .and_then(|t| t.parse().ok())
        .filter(|n| REFRESH_CHOICES.contains(n))
        .unwrap_or(0)
}

/// `path` with `pairs` as its query string.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// A status by name, ignoring case, `-` and `_` (as the CLI reads it).
pub fn parse_status(text: &str) -> Result<Status, Error> {
    let wanted: String = text
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_lowercase();
    Status::ALL
        .iter()
        .copied()
        .find(|s| s.as_str().to_lowercase() == wanted)
        .ok_or_else(|| {
            Error::Input(format!(
                "status {text:?}: expected InProgress, Paused, Completed, Failed or Cancelled"
            ))
        })
}

fn parse_hash(text: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::Input(format!("definition {text:?}: expected 64 hex digits"));
    if text.len() != 64 {
        return Err(bad());
    }
    (0..32)
        .map(|i| {
            text.get(i * 2..i * 2 + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(check_prefix("").unwrap(), "");
        assert_eq!(check_prefix("/").unwrap(), "");
        assert_eq!(check_prefix("/ops/sayiir").unwrap(), "/ops/sayiir");
        for bad in ["ops", "/ops/", "/a//b", "/a b", "/a\"b", "/<x>"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_leaves_nothing_that_ends_a_segment_or_a_value() {
        assert_eq!(encode("a/b?c#d&e=f g%"), "a%2Fb%3Fc%23d%26e%3Df%20g%25");
        assert_eq!(
            with_query("/w", &[("status", "Paused".into()), ("tag", "a&b".into())]),
            "/w?status=Paused&tag=a%26b"
        );
    }

    #[test]
    fn list_parameters() {
        let p = ListParams {
            status: Some("in-progress".into()),
            older_than: Some("1h".into()),
            limit: Some(String::new()),
            tag: Some("  ".into()),
            ..ListParams::default()
        };
        let f = p.filter().unwrap();
        assert_eq!(f.status, Some(Status::InProgress));
        assert_eq!(f.older_than, Some(std::time::Duration::from_hours(1)));
        assert_eq!(f.limit, 50);
        assert!(f.tag.is_none());
        for bad in [
            ListParams {
                limit: Some("0".into()),
                ..ListParams::default()
            },
            ListParams {
                limit: Some("1001".into()),
                ..ListParams::default()
            },
            ListParams {
                status: Some("done".into()),
                ..ListParams::default()
            },
            ListParams {
                definition: Some("zz".into()),
                ..ListParams::default()
            },
            ListParams {
                newer_than: Some("5".into()),
                ..ListParams::default()
            },
        ] {
            assert!(p.filter().is_ok() && bad.filter().is_err(), "{bad:?}");
        }
        assert_eq!(refresh(Some(&"5".into())), 5);
        assert_eq!(refresh(Some(&"3".into())), 0);
    }
}
