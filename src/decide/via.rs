//! Loop protection. Every request the shim forwards carries a `Via` entry naming this
//! process, `1.1 webcollect-shim-<16 hex digits>` (random at start), after whatever `Via`
//! the client sent, which is kept (RFC 9110 §7.6.3). A request that arrives with this
//! process's own entry has come back around, typically because the DNS override that sends
//! merchants to the shim also applies to the shim's own machine; it is answered
//! `508 Loop Detected` and never forwarded again. Another shim's entry is not a loop.

use http::header::VIA;
use http::{HeaderMap, HeaderValue, Version};

/// This process's `Via` entries, one per protocol version it may receive.
#[derive(Debug, Clone)]
pub struct ViaMark {
    pseudonym: String,
    /// `1.0 …`, `1.1 …`, `2 …`: built once, cloned per forwarded request.
    entries: [HeaderValue; 3],
}

impl ViaMark {
    /// A mark with a random instance id, unique to this process.
    #[must_use]
    pub(crate) fn random() -> Self {
        let mut id = [0u8; 8];
        // The OS generator does not fail on Linux; an all-zero id would still work, just
        // not be unique.
        let _ = getrandom::fill(&mut id);
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Self::named(&hex)
    }

    /// The mark `webcollect-shim-<id>`; `id` must be a token (letters, digits, `-`).
    #[must_use]
    pub fn named(id: &str) -> Self {
        let pseudonym = format!("webcollect-shim-{id}");
        let entry = |version: &str| {
            HeaderValue::from_str(&format!("{version} {pseudonym}"))
                .unwrap_or_else(|_| HeaderValue::from_static("1.1 webcollect-shim"))
        };
        Self {
            entries: [entry("1.0"), entry("1.1"), entry("2")],
            pseudonym,
        }
    }

    /// `webcollect-shim-<id>`, the name this process gives itself in `Via`.
    #[must_use]
    pub fn pseudonym(&self) -> &str {
        &self.pseudonym
    }

    /// The entry for a request received as `version`.
    #[must_use]
    pub(crate) fn entry(&self, version: Version) -> &HeaderValue {
        match version {
            Version::HTTP_09 | Version::HTTP_10 => &self.entries[0],
            Version::HTTP_2 => &self.entries[2],
            _ => &self.entries[1],
        }
    }

    /// Adds this process's entry after the client's.
    pub fn append(&self, headers: &mut HeaderMap, received: Version) {
        headers.append(VIA, self.entry(received).clone());
    }

    /// True when `headers` carry this process's own entry: the request has been here.
    #[must_use]
    pub fn is_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            // received-protocol SP received-by [ SP comment ]
            .filter_map(|entry| entry.split_whitespace().nth(1))
            .any(|by| by.eq_ignore_ascii_case(&self.pseudonym))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_entry_is_recognised_among_others_and_others_are_not() {
        let mark = ViaMark::named("0123456789abcdef");
        let other = ViaMark::random();
        assert_ne!(mark.pseudonym(), other.pseudonym());
        let mut headers = HeaderMap::new();
        headers.append(VIA, HeaderValue::from_static("1.1 corp-proxy (Squid)"));
        assert!(!mark.is_in(&headers));
        other.append(&mut headers, Version::HTTP_11);
        assert!(!mark.is_in(&headers));
        mark.append(&mut headers, Version::HTTP_2);
        assert!(mark.is_in(&headers));
        assert_eq!(
            headers.get_all(VIA).iter().collect::<Vec<_>>(),
            [
                "1.1 corp-proxy (Squid)",
                &format!("1.1 {}", other.pseudonym()),
                "2 webcollect-shim-0123456789abcdef"
            ]
        );
        // Folded into one line by an intermediary, and in another case.
        let mut folded = HeaderMap::new();
        folded.insert(
            VIA,
            HeaderValue::from_static("1.0 a, 1.1 WEBCOLLECT-SHIM-0123456789ABCDEF"),
        );
        assert!(mark.is_in(&folded));
        assert_eq!(other.pseudonym().len(), "webcollect-shim-".len() + 16);
    }
}
