//! OpenAPI schemas of the validated values, for `#[schema(schema_with = ...)]`:
//! the document states what the server refuses, so a generated client (and
//! a fuzzer) knows it before sending.

use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

/// What `char::is_control` (Unicode Cc) holds.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// What `char::is_whitespace` holds, besides control characters.
const SPACE: &str = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// What `str::trim` removes: `char::is_whitespace`, control characters included.
const TRIMMED: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A pattern for 0 or more characters with no control character, at least one
/// of them not white space (`Name::parse`).
fn not_blank_pattern() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$")
}

fn nullable(ty: Type, optional: bool) -> SchemaType {
    if optional { SchemaType::from_iter([ty, Type::Null]) } else { SchemaType::Type(ty) }
}

fn name_of(optional: bool) -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String, optional))
        .min_length(Some(1))
        .max_length(Some(berth_domain::values::Name::MAX_CHARS))
        .pattern(Some(not_blank_pattern()))
        .description(Some("1 to 100 characters, no control characters, not only white space; stored trimmed."))
        .build()
}

/// A `Name`: 1 to 100 characters, no control character, not blank.
pub fn name() -> Object {
    name_of(false)
}

/// An `Option<Name>`: a name, or null (or absent).
pub fn optional_name() -> Object {
    name_of(true)
}

/// Free text of 1 to `max` characters with no control character (a commit,
/// an agent version).
pub fn printable(max: usize, optional: bool) -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String, optional))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .build()
}

/// Standard base64 with its padding (and zero trailing bits, as the decoder
/// insists), with white space around it allowed (it is trimmed).
fn base64_of(optional: bool) -> Object {
    let quad = "[A-Za-z0-9+/]";
    ObjectBuilder::new()
        .schema_type(nullable(Type::String, optional))
        .pattern(Some(format!("^[{TRIMMED}]*(?:{quad}{{4}})*(?:{quad}[AQgw]==|{quad}{{2}}[AEIMQUYcgkosw048]=)?[{TRIMMED}]*$")))
        .description(Some("Standard base64 (with padding); at most 4 MiB once decoded."))
        .build()
}

/// Base64 content.
pub fn base64() -> Object {
    base64_of(false)
}

/// Base64 content, or null (or absent).
pub fn optional_base64() -> Object {
    base64_of(true)
}

/// A package's version label (`VersionLabel::parse`): 1 to 64 of letters,
/// digits, `.`, `_`, `-`, `+`, with white space around it allowed (it is trimmed).
pub fn optional_version_label() -> Object {
    ObjectBuilder::new().schema_type(nullable(Type::String, true)).pattern(Some(format!("^[{TRIMMED}]*[A-Za-z0-9._+-]{{1,64}}[{TRIMMED}]*$"))).build()
}

/// A string that is one of `values` (a serde enum's snake_case names).
pub fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).build()
}

/// `one_of`, or null (or absent).
pub fn optional_one_of(values: &[&str]) -> Object {
    let values = values.iter().map(|v| Value::from(*v)).chain([Value::Null]);
    ObjectBuilder::new().schema_type(nullable(Type::String, true)).enum_values(Some(values)).build()
}

/// An array of `one_of(values)`, with at least `min_items`.
pub fn array_of(values: &[&str], min_items: usize, optional: bool) -> utoipa::openapi::schema::Array {
    let builder = ArrayBuilder::new().items(one_of(values)).min_items(Some(min_items));
    if optional { builder.schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build() } else { builder.build() }
}

/// The roles a tenant's key or policy may name (`platform_admin` is not a tenant role).
pub const TENANT_ROLES: [&str; 5] = ["viewer", "developer", "deployer", "approver", "admin"];

#[cfg(test)]
mod tests {
    use super::*;
    use berth_domain::values::{Name, Role};

    fn pattern_of(o: &Object) -> regex_lite::Regex {
        regex_lite::Regex::new(o.pattern.as_deref().expect("a pattern")).expect("the pattern compiles")
    }

    #[test]
    fn the_name_pattern_accepts_what_name_parse_accepts_and_refuses_the_rest() {
        let pattern = pattern_of(&name());
        for raw in ["Production", " padded ", "é", "a b", "x\u{a0}y"] {
            assert!(pattern.is_match(raw) && Name::parse(raw).is_ok(), "{raw:?} is a name");
        }
        for raw in ["", "   ", "\u{3000}", "Pr\nod", "\tProd", "a\u{0}", "a\u{85}"] {
            assert!(!pattern.is_match(raw) && Name::parse(raw).is_err(), "{raw:?} is not a name");
        }
    }

    #[test]
    fn the_base64_pattern_accepts_what_the_decoder_accepts() {
        use base64::Engine;
        let pattern = pattern_of(&base64());
        let decode = |raw: &str| base64::engine::general_purpose::STANDARD.decode(raw.trim()).is_ok();
        for raw in ["", "QQ==", "QUI=", "QUJD", " QUJD\n", "PHByb2Nlc3MvPg=="] {
            assert!(pattern.is_match(raw) && decode(raw), "{raw:?} is base64");
        }
        for raw in ["Q", "QR==", "QUJ=", "QUJD=", "QU JD", "QQ", "QUI"] {
            assert!(!pattern.is_match(raw) && !decode(raw), "{raw:?} is not base64");
        }
    }

    #[test]
    fn the_version_label_pattern_accepts_what_version_label_parse_accepts() {
        use berth_domain::package::VersionLabel;
        let pattern = pattern_of(&optional_version_label());
        for raw in ["1", "1.4.0+build_7-rc", " 2 "] {
            assert!(pattern.is_match(raw) && VersionLabel::parse(raw).is_ok(), "{raw:?}");
        }
        for raw in ["", " ", "1 0", "1/0", "é", &"1".repeat(65)] {
            assert!(!pattern.is_match(raw) && VersionLabel::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn the_tenant_roles_are_roles_and_platform_admin_is_not_among_them() {
        for role in TENANT_ROLES {
            assert!(Role::parse(role).is_some(), "{role}");
        }
        assert!(!TENANT_ROLES.contains(&Role::PlatformAdmin.as_str()));
    }
}
