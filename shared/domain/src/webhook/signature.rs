//! How a delivery proves it comes from someone holding the webhook's secret.
//!
//! - `Berth-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each
//!   `v1` is the hex HMAC-SHA256, keyed by the whole secret (`whsec_...`),
//!   of `"<t>.<raw body>"` (of `"<t>.<delivery id>"` for a status call).
//!   Several `v1` let a sender sign with both secrets during a rotation.
//!   `t` must be within `SIGNATURE_TOLERANCE_SECS` of the server's clock.
//! - GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, so a
//!   repository webhook works as it is. It carries no time: its delivery id
//!   is its replay protection.
//!
//! Every comparison is constant-time (`hmac`'s `verify_slice`).

use super::SIGNATURE_TOLERANCE_SECS;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A signature as presented in the request's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    Berth { t: i64, v1: Vec<Vec<u8>> },
    GitHub { sha256: Vec<u8> },
}

/// What checking a signature found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Valid,
    /// Well-formed, but its timestamp is outside the tolerance.
    Stale,
    /// No secret produced it.
    Invalid,
}

impl Presented {
    /// Reads `Berth-Signature`; `None` if it is malformed (no `t`, no `v1`,
    /// a `v1` that is not 64 hex digits). Unknown schemes (`v0=...`) are ignored.
    pub fn parse_berth(header: &str) -> Option<Self> {
        let mut t = None;
        let mut v1 = vec![];
        for part in header.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key.trim() {
                "t" => t = Some(value.trim().parse::<i64>().ok()?),
                "v1" => v1.push(decode_sha256_hex(value.trim())?),
                _ => {}
            }
        }
        (!v1.is_empty()).then_some(Self::Berth { t: t?, v1 })
    }

    /// Reads `X-Hub-Signature-256: sha256=<hex>`.
    pub fn parse_github(header: &str) -> Option<Self> {
        let hex = header.trim().strip_prefix("sha256=")?;
        Some(Self::GitHub { sha256: decode_sha256_hex(hex)? })
    }

    /// Checks the signature over `payload` (the raw body, or the delivery id
    /// of a status call) against each of `keys` at `now` (unix seconds).
    pub fn check<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>, payload: &[u8], now: i64) -> Check {
        let keys: Vec<&[u8]> = keys.into_iter().collect();
        match self {
            Self::Berth { t, v1 } => {
                let signed = [t.to_string().as_bytes(), b".", payload].concat();
                let valid = keys.iter().any(|key| v1.iter().any(|sig| verifies(key, &signed, sig)));
                if !valid {
                    Check::Invalid
                } else if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
                    Check::Stale
                } else {
                    Check::Valid
                }
            }
            Self::GitHub { sha256 } => {
                if keys.iter().any(|key| verifies(key, payload, sha256)) {
                    Check::Valid
                } else {
                    Check::Invalid
                }
            }
        }
    }
}

fn decode_sha256_hex(raw: &str) -> Option<Vec<u8>> {
    hex::decode(raw).ok().filter(|b| b.len() == 32)
}

/// The HMAC-SHA256 of `message` keyed by `key` (HMAC takes keys of any length, so it is always `Some`).
fn mac_of(key: &[u8], message: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac)
}

fn verifies(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    mac_of(key, message).is_some_and(|mac| mac.verify_slice(signature).is_ok())
}

/// The hex HMAC-SHA256 of `message` keyed by `key`.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    mac_of(key, message).map(|mac| hex::encode(mac.finalize().into_bytes())).unwrap_or_default()
}

/// A `Berth-Signature` value for `payload` at `t`, as a sender computes it.
pub fn berth_header(key: &[u8], t: i64, payload: &[u8]) -> String {
    let signed = [t.to_string().as_bytes(), b".", payload].concat();
    format!("t={t},v1={}", hmac_hex(key, &signed))
}

/// An `X-Hub-Signature-256` value for `body`, as GitHub computes it.
pub fn github_header(key: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(key, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"whsec_test";
    const NOW: i64 = 1_800_000_000;

    fn berth(header: &str) -> Presented {
        Presented::parse_berth(header).unwrap()
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies_and_one_byte_changed_does_not() {
        let header = berth_header(KEY, NOW, b"{}");
        assert_eq!(berth(&header).check([KEY], b"{}", NOW), Check::Valid);
        assert_eq!(berth(&header).check([KEY], b"{ }", NOW), Check::Invalid);
        assert_eq!(berth(&header).check([&b"whsec_other"[..]], b"{}", NOW), Check::Invalid);
    }

    #[test]
    fn the_timestamp_may_be_300_seconds_off_either_way_and_no_more() {
        for (t, expected) in [(NOW - 300, Check::Valid), (NOW + 300, Check::Valid), (NOW - 301, Check::Stale), (NOW + 301, Check::Stale)] {
            assert_eq!(berth(&berth_header(KEY, t, b"x")).check([KEY], b"x", NOW), expected, "t = now {:+}", t - NOW);
        }
    }

    #[test]
    fn a_timestamp_changed_after_signing_fails_the_signature() {
        let header = berth_header(KEY, NOW - 1000, b"x").replace(&format!("t={}", NOW - 1000), &format!("t={NOW}"));
        assert_eq!(berth(&header).check([KEY], b"x", NOW), Check::Invalid);
    }

    #[test]
    fn any_of_several_v1_and_any_live_secret_may_match() {
        let good = hmac_hex(KEY, format!("{NOW}.x").as_bytes());
        let header = format!("t={NOW},v1={},v1={good},v0=ignored", "0".repeat(64));
        assert_eq!(berth(&header).check([&b"whsec_old"[..], KEY], b"x", NOW), Check::Valid);
    }

    #[test]
    fn malformed_headers_are_not_signatures() {
        for bad in ["", "t=1", "v1=00", &format!("v1={}", "0".repeat(64)), &format!("t=x,v1={}", "0".repeat(64)), &format!("t=1,v1={}", "z".repeat(64))] {
            assert!(Presented::parse_berth(bad).is_none(), "{bad:?}");
        }
        assert!(Presented::parse_github("sha1=00").is_none());
    }

    #[test]
    fn a_github_signature_covers_the_raw_body_without_a_timestamp() {
        let header = github_header(KEY, b"{\"after\":\"abc\"}");
        let presented = Presented::parse_github(&header).unwrap();
        assert_eq!(presented.check([KEY], b"{\"after\":\"abc\"}", NOW), Check::Valid);
        assert_eq!(presented.check([KEY], b"{\"after\":\"abd\"}", NOW), Check::Invalid);
    }

    #[test]
    fn the_documented_example_signature_is_reproducible() {
        // The same figures appear in docs/webhooks.md: a sender can check its code against them.
        let header = berth_header(b"whsec_example", 1_700_000_000, br#"{"commit":"abc123"}"#);
        assert_eq!(header, "t=1700000000,v1=cf7275b8e3815a6b77a8d5006d7cd96415f584539fca5e0146681b14352d7cac");
    }
}
