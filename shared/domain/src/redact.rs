//! Redaction of what must never be stored or shown: credentials Berth issues
//! and the secrets of presigned URLs. Applied to every timeline line and
//! target message before it is stored, whoever wrote it (agents included).

/// Prefixes of the credentials Berth issues: runtime credentials,
/// registration tokens, webhook secrets and API keys.
pub const CREDENTIAL_PREFIXES: [&str; 4] = ["brc_", "brr_", "whsec_", "bak_"];

/// Query parameters of AWS presigned URLs that carry a secret.
pub const PRESIGNED_SECRETS: [&str; 2] = ["X-Amz-Signature", "X-Amz-Security-Token"];

const REDACTED: &str = "[redacted]";

/// `text` with every URL's query string and anything that looks like a
/// credential replaced by `[redacted]`. Everything else is kept as it was.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            out.push_str(&redact_word(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(&redact_word(&word));
    out
}

/// Whether `text` still holds anything `redact` would remove.
pub fn holds_secret(text: &str) -> bool {
    redact(text) != text
}

fn redact_word(word: &str) -> String {
    // A URL keeps its scheme, host and path; its query string goes.
    let word = match (word.find("://"), word.find('?')) {
        (Some(scheme), Some(query)) if query > scheme => format!("{}?{REDACTED}", &word[..query]),
        _ => word.to_string(),
    };
    let mut out = String::with_capacity(word.len());
    let mut rest = word.as_str();
    while let Some((start, len)) = next_secret(rest) {
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// The first secret in `s`, as (start, length).
fn next_secret(s: &str) -> Option<(usize, usize)> {
    let lower = s.to_ascii_lowercase();
    let mut found: Option<(usize, usize)> = None;
    let mut consider = |start: usize, len: usize| {
        if found.is_none_or(|(f, _)| start < f) {
            found = Some((start, len));
        }
    };
    for prefix in CREDENTIAL_PREFIXES {
        let mut from = 0;
        while let Some(i) = lower[from..].find(prefix).map(|i| i + from) {
            // Only at the start of a token: `feedbak_x` is not an API key.
            let at_boundary = i == 0 || !s.as_bytes()[i - 1].is_ascii_alphanumeric();
            let len = prefix.len() + token_len(&s[i + prefix.len()..]);
            if at_boundary && len > prefix.len() {
                consider(i, len);
                break;
            }
            from = i + prefix.len();
        }
    }
    for name in PRESIGNED_SECRETS {
        if let Some(i) = lower.find(&name.to_ascii_lowercase()) {
            // The parameter and its value, whether `=` or `%3D` follows.
            consider(i, name.len() + token_len(&s[i + name.len()..]));
        }
    }
    found
}

/// How many leading bytes of `s` can belong to a token or a URL-encoded value.
fn token_len(s: &str) -> usize {
    s.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'%' | b'.' | b'+' | b'/' | b'~')).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presigned_url_loses_its_query_string_but_keeps_where_it_pointed() {
        let message =
            "download failed: 403 for http://127.0.0.1:4566/bucket/tenants/t/packages/p.tar.gz?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc123 (retrying)";
        assert_eq!(redact(message), "download failed: 403 for http://127.0.0.1:4566/bucket/tenants/t/packages/p.tar.gz?[redacted] (retrying)");
    }

    #[test]
    fn credentials_are_redacted_wherever_they_appear() {
        let cred = "brc_0123abcd_4567ef_secretPart-xyz";
        assert_eq!(redact(&format!("using {cred} now")), "using [redacted] now");
        assert_eq!(redact("token=brr_a_b_c;"), "token=[redacted];");
        assert_eq!(redact("secret whsec_Zm9v and key bak_123"), "secret [redacted] and key [redacted]");
        assert_eq!(redact("X-Amz-Security-Token=FQoG%2Fxyz&next"), "[redacted]&next");
    }

    #[test]
    fn ordinary_text_is_kept_as_it_was() {
        for text in ["Applying", "Runtime \"atom-1\": Failed: exit status 3\nline two", "feedbak_ours and rollback_done", "see https://docs.example/x", ""] {
            assert_eq!(redact(text), text);
            assert!(!holds_secret(text));
        }
    }

    #[test]
    fn nothing_that_redaction_removes_survives_it() {
        let text = "a http://h/p?X-Amz-Signature=s b brc_x_y_z c X-AMZ-SIGNATURE=t";
        let clean = redact(text);
        assert!(!holds_secret(&clean), "{clean}");
        for marker in CREDENTIAL_PREFIXES.iter().chain(PRESIGNED_SECRETS.iter()) {
            assert!(!clean.to_ascii_lowercase().contains(&marker.to_ascii_lowercase()), "{marker} in {clean}");
        }
    }
}
