//! What every page shares: where links start, the navigation, the refresh
//! choices and whether action buttons are drawn.

use super::Inner;
use super::params::{REFRESH_CHOICES, with_query};

/// The frame of a page, handed to its template.
pub struct Frame {
    /// The page's title.
    pub title: String,
    /// The path the dashboard is mounted at ("" at the root).
    pub prefix: String,
    /// The overview's path (the prefix, or `/`).
    pub home: String,
    /// Which navigation entry is current.
    pub section: &'static str,
    /// The refresh interval in seconds (0 = off).
    pub refresh: u32,
    /// Links to this page with each refresh interval: (label, href, current).
    pub refresh_links: Vec<(String, String, bool)>,
    /// Whether action buttons are drawn.
    pub actions: bool,
}

impl Frame {
    /// The frame of the page at `path` (below the prefix) whose other query
    /// parameters are `pairs`.
    pub fn new(
        state: &Inner,
        title: impl Into<String>,
        section: &'static str,
        path: &str,
        pairs: &[(&'static str, String)],
        refresh: u32,
    ) -> Self {
        let refresh_links = REFRESH_CHOICES
            .iter()
            .map(|&s| {
                let mut all = pairs.to_vec();
                if s > 0 {
                    all.push(("refresh", s.to_string()));
                }
                let label = if s == 0 {
                    "off".to_owned()
                } else {
                    format!("{s} s")
                };
                let here = format!("{}{path}", state.prefix);
                (label, with_query(&here, &all), s == refresh)
            })
            .collect();
        Self {
            title: title.into(),
            home: if state.prefix.is_empty() {
                "/".to_owned()
            } else {
                state.prefix.clone()
            },
            prefix: state.prefix.clone(),
            section,
            refresh,
            refresh_links,
            actions: state.actions,
        }
    }

    /// `path` below the prefix, with `refresh` kept when it is on.
    pub fn link(&self, path: &str, pairs: &[(&str, String)]) -> String {
        let mut all: Vec<(&str, String)> = pairs.to_vec();
        if self.refresh > 0 {
            all.push(("refresh", self.refresh.to_string()));
        }
        with_query(&format!("{}{path}", self.prefix), &all)
    }

    /// `path` below the prefix, refresh kept.
    pub fn path(&self, path: &str) -> String {
        self.link(path, &[])
    }

    /// The workflow list filtered by one parameter.
    pub fn list_link(&self, name: &str, value: &str) -> String {
        self.link("/workflows", &[(name, value.to_owned())])
    }

    /// A workflow's page.
    pub fn workflow_link(&self, id: &str) -> String {
        self.link(&format!("/workflows/{}", super::params::encode(id)), &[])
    }
}
