//! The attacker's matrix: every operation of the served OpenAPI document ×
//! every way of calling it without the right to. Each cell must get its
//! 401, 403 or 404 as problem+json, and the whole matrix must write nothing.
//! The rows come from the document, so a new route is attacked as soon as it
//! is documented (its request body needs an `example`; see `doc.rs`).

mod doc;
mod estate;
mod forge;
mod stored;

use berth_domain::usecases::Settings;
use berth_tests::{AUDIENCE, ISSUER, TestApp, expect_status};
use berth_web::AuthConfig;
use berth_web::auth::{Claims, KeySource};
use doc::{Operation, Security};
use estate::{Estate, call};
use forge::{Signer, altered, fixture, platform_claims, user_claims};
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stored::Stored;

/// The columns of the matrix: one way of attacking an operation each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    NoToken,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    AlgNone,
    Hs256WithPublicKey,
    RuntimeCredentialAsJwt,
    PlatformOnTenantRoute,
    OtherTenant,
    LackingRole,
    Garbage,
    AlteredCredential,
    UserJwt,
    OtherRuntime,
    OtherTenantsRuntime,
    UnknownRegistration,
    UsedRegistration,
    CredentialAsRegistration,
}

use Attack::*;

const ATTACKS: [Attack; 19] = [
    NoToken,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    AlgNone,
    Hs256WithPublicKey,
    RuntimeCredentialAsJwt,
    PlatformOnTenantRoute,
    OtherTenant,
    LackingRole,
    Garbage,
    AlteredCredential,
    UserJwt,
    OtherRuntime,
    OtherTenantsRuntime,
    UnknownRegistration,
    UsedRegistration,
    CredentialAsRegistration,
];

impl Attack {
    fn column(self) -> &'static str {
        match self {
            NoToken => "none",
            Expired => "expired",
            NotYetValid => "nbf",
            WrongIssuer => "iss",
            WrongAudience => "aud",
            AlgNone => "alg:none",
            Hs256WithPublicKey => "hs256pub",
            RuntimeCredentialAsJwt => "rt-cred",
            PlatformOnTenantRoute => "platform",
            OtherTenant => "tenant B",
            LackingRole => "role",
            Garbage => "garbage",
            AlteredCredential => "altered",
            UserJwt => "user jwt",
            OtherRuntime => "other rt",
            OtherTenantsRuntime => "B's rt",
            UnknownRegistration => "reg ?",
            UsedRegistration => "reg used",
            CredentialAsRegistration => "reg=cred",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            NoToken => "no Authorization header",
            Expired => "the right JWT, expired two hours ago",
            NotYetValid => "the right JWT, not valid for another two hours (nbf)",
            WrongIssuer => "the right JWT from another issuer",
            WrongAudience => "the right JWT for another audience",
            AlgNone => "the right claims, unsigned (alg: none)",
            Hs256WithPublicKey => "the right claims, HS256-signed with the RS256 public key",
            RuntimeCredentialAsJwt => "A's runtime credential instead of a JWT",
            PlatformOnTenantRoute => "a platform_admin JWT (no tenant) on a tenant route",
            OtherTenant => "tenant B's admin naming A's resources; on platform routes, B's token claiming platform_admin",
            LackingRole => "A's JWT without the permission: viewer for writes, no roles for reads; on platform routes, A's admin",
            Garbage => "`Bearer garbage` on an agent route",
            AlteredCredential => "A's runtime credential with one character changed",
            UserJwt => "A's admin JWT on an agent route",
            OtherRuntime => "another runtime of A, on A's runtime's job",
            OtherTenantsRuntime => "tenant B's runtime, on A's runtime's job",
            UnknownRegistration => "a well-formed registration token nobody issued",
            UsedRegistration => "A's registration token, already used",
            CredentialAsRegistration => "A's runtime credential as the registration token",
        }
    }
}

/// What a cell must answer.
#[derive(Clone, Debug)]
enum Expect {
    /// This status as problem+json, with this code when given.
    Problem(StatusCode, Option<&'static str>),
    /// B naming A's ids only in the body: exactly what B gets for ids that
    /// do not exist (a 4xx), so the answer reveals nothing about A.
    SameAsUnknownIds,
    NotApplicable,
}

const UNAUTHENTICATED: Expect = Expect::Problem(StatusCode::UNAUTHORIZED, Some("unauthenticated"));
const FORBIDDEN: Expect = Expect::Problem(StatusCode::FORBIDDEN, None);
const NOT_FOUND: Expect = Expect::Problem(StatusCode::NOT_FOUND, Some("not_found"));

/// Operations that need no permission at all, so the role cell has nothing to refuse.
const NO_PERMISSION_NEEDED: &[(&str, &str, &str)] = &[("GET", "/v1/me", "a caller may always see who they are")];

/// `POST`s that change nothing: the read permission is what they need, so
/// their role cell uses a token with no roles (as for a `GET`).
const READING_POSTS: &[(&str, &str)] =
    &[("POST", "/v1/deployments/validate"), ("POST", "/v1/change-requests/{id}/validate"), ("POST", "/v1/change-requests/{id}/scan")];

fn reads(op: &Operation) -> bool {
    op.method == Method::GET || READING_POSTS.contains(&(op.method.as_str(), op.path.as_str()))
}

/// Every credential the attacks use.
struct Tokens {
    signer: Signer,
    estate: Estate,
    a_viewer: String,
    a_no_roles: String,
    platform: String,
    b_claiming_platform: String,
}

/// One request to send: an Authorization header (or none), other headers and a body.
struct Attempt {
    authorization: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Tokens {
    /// The claims that would pass on `op`: A's admin, or the platform operator.
    fn right_claims(&self, op: &Operation) -> Claims {
        match op.security {
            Security::Jwt { platform: true } => platform_claims(),
            _ => user_claims(&self.estate.a_tenant, "alice@acme.example", &["admin"]),
        }
    }

    fn expectation(&self, op: &Operation, attack: Attack, names_path: bool, names_body: bool) -> Expect {
        match (op.security, attack) {
            (Security::Jwt { .. }, NoToken | Expired | NotYetValid | WrongIssuer | WrongAudience | AlgNone | Hs256WithPublicKey | RuntimeCredentialAsJwt) => {
                UNAUTHENTICATED
            }
            (Security::Jwt { platform: false }, PlatformOnTenantRoute) => UNAUTHENTICATED,
            (Security::Jwt { platform: false }, OtherTenant) if names_path => NOT_FOUND,
            (Security::Jwt { platform: false }, OtherTenant) if names_body => Expect::SameAsUnknownIds,
            (Security::Jwt { platform: true }, OtherTenant | LackingRole) => FORBIDDEN,
            (Security::Jwt { platform: false }, LackingRole) if no_permission_needed(op).is_some() => Expect::NotApplicable,
            (Security::Jwt { platform: false }, LackingRole) => FORBIDDEN,
            (Security::RuntimeCredential, NoToken | Garbage | AlteredCredential | UserJwt) => UNAUTHENTICATED,
            (Security::RuntimeCredential, OtherRuntime | OtherTenantsRuntime) if names_path => NOT_FOUND,
            (Security::Public, UnknownRegistration | UsedRegistration | CredentialAsRegistration) => UNAUTHENTICATED,
            // Each with its own code (signature_required, stale_signature, bad_signature): any 401 problem.
            (Security::WebhookSignature, NoToken | Expired | Garbage | AlteredCredential | OtherTenant) => Expect::Problem(StatusCode::UNAUTHORIZED, None),
            _ => Expect::NotApplicable,
        }
    }

    /// The request for `attack` on `op`, whose example body (A's ids filled in) is `body`.
    fn attempt(&self, op: &Operation, attack: Attack, body: Option<Value>) -> Attempt {
        if op.security == Security::WebhookSignature {
            return self.signed_attempt(attack, body);
        }
        let bearer = |t: &str| Some(format!("Bearer {t}"));
        let right = self.right_claims(op);
        let e = &self.estate;
        let authorization = match attack {
            NoToken => None,
            Expired => bearer(&self.signer.expired(&right)),
            NotYetValid => bearer(&self.signer.not_yet_valid(&right)),
            WrongIssuer => bearer(&self.signer.wrong_issuer(&right)),
            WrongAudience => bearer(&self.signer.wrong_audience(&right)),
            AlgNone => bearer(&self.signer.alg_none(&right)),
            Hs256WithPublicKey => bearer(&self.signer.hs256_with_public_key(&right)),
            RuntimeCredentialAsJwt => bearer(&e.a_credential),
            PlatformOnTenantRoute => bearer(&self.platform),
            OtherTenant if matches!(op.security, Security::Jwt { platform: true }) => bearer(&self.b_claiming_platform),
            OtherTenant => bearer(&e.b_admin),
            LackingRole if matches!(op.security, Security::Jwt { platform: true }) => bearer(&e.a_admin),
            LackingRole if reads(op) => bearer(&self.a_no_roles),
            LackingRole => bearer(&self.a_viewer),
            Garbage => Some("Bearer garbage".to_string()),
            AlteredCredential => bearer(&altered(&e.a_credential)),
            UserJwt => bearer(&e.a_admin),
            OtherRuntime => bearer(&e.a_other_credential),
            OtherTenantsRuntime => bearer(&e.b_credential),
            UnknownRegistration | UsedRegistration | CredentialAsRegistration => None,
        };
        let registration = match attack {
            UnknownRegistration => Some(altered(&e.a_used_registration)),
            UsedRegistration => Some(e.a_used_registration.clone()),
            CredentialAsRegistration => Some(e.a_credential.clone()),
            _ => None,
        };
        let body = match (body, registration) {
            (Some(mut b), Some(token)) => {
                b["registration_token"] = Value::String(token);
                Some(b)
            }
            (b, _) => b,
        };
        Attempt { authorization, headers: vec![], body }
    }

    /// A webhook request: signed as `attack` says (not at all, an hour ago,
    /// garbage, one digit altered, or with tenant B's webhook secret).
    fn signed_attempt(&self, attack: Attack, body: Option<Value>) -> Attempt {
        use berth_domain::webhook::signature::berth_header;
        let e = &self.estate;
        // What the signature covers: the raw body (as reqwest's `json` writes it), or the delivery id of a status call.
        let payload = match &body {
            Some(b) => serde_json::to_vec(b).expect("the body serialises"),
            None => e.ids["delivery"].clone().into_bytes(),
        };
        let now = chrono::Utc::now().timestamp();
        let signature = match attack {
            NoToken => None,
            Expired => Some(berth_header(e.a_webhook_secret.as_bytes(), now - 3600, &payload)),
            Garbage => Some("garbage".to_string()),
            AlteredCredential => Some(altered(&berth_header(e.a_webhook_secret.as_bytes(), now, &payload))),
            OtherTenant => Some(berth_header(e.b_webhook_secret.as_bytes(), now, &payload)),
            _ => None,
        };
        let mut headers = vec![("berth-delivery", format!("attack-{}", uuid::Uuid::new_v4()))];
        headers.extend(signature.map(|s| ("berth-signature", s)));
        Attempt { authorization: None, headers, body }
    }
}

fn no_permission_needed(op: &Operation) -> Option<&'static str> {
    NO_PERMISSION_NEEDED.iter().find(|(m, p, _)| *m == op.method.as_str() && *p == op.path).map(|(_, _, why)| *why)
}

/// What came back: status and problem code (if any), and the body for the report.
#[derive(Clone, Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    code: Option<String>,
    body: String,
}

async fn send(app: &TestApp, method: &Method, path: &str, attempt: &Attempt) -> Answer {
    let mut request = app.http.request(method.clone(), format!("{}{}", app.base, path));
    if let Some(a) = &attempt.authorization {
        request = request.header("authorization", a);
    }
    for (name, value) in &attempt.headers {
        request = request.header(*name, value);
    }
    if let Some(b) = &attempt.body {
        request = request.json(b);
    }
    let response = request.send().await.expect("the request is sent");
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["code"].as_str().map(str::to_string));
    Answer { status, content_type, code, body }
}

/// Whether `answer` is what `expect` asks for; `Err` says why not.
fn check(expect: &Expect, answer: &Answer, unknown_ids: Option<&Answer>) -> Result<(), String> {
    let shown = |a: &Answer| format!("{} {}", a.status.as_u16(), a.code.as_deref().unwrap_or("-"));
    match expect {
        Expect::Problem(status, code) => {
            let right = answer.status == *status && answer.content_type == "application/problem+json" && code.is_none_or(|c| answer.code.as_deref() == Some(c));
            if right { Ok(()) } else { Err(format!("expected {} {} problem+json, got {}", status.as_u16(), code.unwrap_or("(any code)"), shown(answer))) }
        }
        Expect::SameAsUnknownIds => {
            let unknown = unknown_ids.expect("the unknown-ids answer");
            let same = answer.status == unknown.status && answer.code == unknown.code;
            if same && answer.status.is_client_error() {
                Ok(())
            } else {
                Err(format!("expected what unknown ids get ({}), a 4xx; got {}", shown(unknown), shown(answer)))
            }
        }
        Expect::NotApplicable => Ok(()),
    }
}

fn rs256_app_config() -> AuthConfig {
    AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: fixture("rs256-public.pem") },
        claims: Default::default(),
    }
}

/// The genuine tokens the attacks are made from work, so every refusal below is
/// down to the attack alone.
async fn genuine_tokens_work(app: &TestApp, t: &Tokens) {
    for token in [&t.estate.a_admin, &t.a_viewer, &t.a_no_roles, &t.estate.b_admin] {
        expect_status(call(app, Method::GET, "/v1/me", token, None).await, StatusCode::OK).await;
    }
    expect_status(call(app, Method::GET, "/v1/environments", &t.a_viewer, None).await, StatusCode::OK).await;
    expect_status(call(app, Method::GET, "/platform/v1/tenants", &t.platform, None).await, StatusCode::OK).await;
    let job = format!("/v1/deployments/{}/targets", t.estate.ids["deployment"]);
    let targets = expect_status(call(app, Method::GET, &job, &t.estate.a_admin, None).await, StatusCode::OK).await;
    assert_eq!(targets["items"][0]["job_id"], t.estate.ids["job"].as_str(), "the job is A's runtime's");
    assert_eq!(targets["items"][0]["state"], "delivered", "the job is in flight");
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_refuses_every_attack_with_401_403_or_404_and_writes_nothing() {
    let app = TestApp::spawn_with_auth(rs256_app_config(), format!("unused-{}", uuid::Uuid::new_v4()), Settings::default()).await;
    let signer = Signer::new();
    let estate = Estate::build(&app, &signer).await;
    let tokens = Tokens {
        a_viewer: signer.user(&estate.a_tenant, "victor@acme.example", &["viewer"]),
        a_no_roles: signer.user(&estate.a_tenant, "nora@acme.example", &[]),
        platform: signer.platform(),
        b_claiming_platform: signer.user(&estate.b_tenant, "mallory@globex.example", &["admin", "platform_admin"]),
        signer,
        estate,
    };
    genuine_tokens_work(&app, &tokens).await;

    let document: Value = expect_status(app.request(Method::GET, "/v1/openapi.json", None).send().await.expect("sent"), StatusCode::OK).await;
    let ops = doc::operations(&document).unwrap_or_else(|problems| panic!("the matrix cannot call every operation:\n  {}", problems.join("\n  ")));
    for must in ["POST /agent/v1/register", "POST /agent/v1/jobs/{id}/events", "GET /v1/me", "PATCH /platform/v1/tenants/{id}"] {
        assert!(ops.iter().any(|o| o.label() == must), "the document lists {must}");
    }

    let before = Stored::read(&app, &tokens.estate.a_admin).await;
    let mut rows = vec![];
    let mut wrong = vec![];
    let mut doc_problems = vec![];
    for op in &ops {
        let path = match tokens.estate.fill_path(&op.path) {
            Ok(p) => p,
            Err(why) => {
                doc_problems.push(format!("{}: {why}", op.label()));
                continue;
            }
        };
        let (body, unknown_body) = match op.body.as_ref().map(|b| (tokens.estate.fill_body(b, false), tokens.estate.fill_body(b, true))) {
            None => (None, None),
            Some((Ok(b), Ok(u))) => (Some(b), Some(u)),
            Some((Err(why), _)) | Some((_, Err(why))) => {
                doc_problems.push(format!("{}: {why}", op.label()));
                continue;
            }
        };
        if op.security == Security::Public && !op.body.as_ref().is_some_and(|b| b.get("registration_token").is_some()) {
            doc_problems.push(format!("{}: a public operation the matrix has no attacks for; add its cells to tests/attack/main.rs", op.label()));
            continue;
        }
        let names_path = path != op.path;
        let names_body = op.body.as_ref().is_some_and(Estate::body_names_resources);
        let mut row = vec![];
        for attack in ATTACKS {
            let expect = tokens.expectation(op, attack, names_path, names_body);
            if matches!(expect, Expect::NotApplicable) {
                row.push("·".to_string());
                continue;
            }
            let answer = send(&app, &op.method, &path, &tokens.attempt(op, attack, body.clone())).await;
            let unknown = match expect {
                Expect::SameAsUnknownIds => Some(send(&app, &op.method, &path, &tokens.attempt(op, attack, unknown_body.clone())).await),
                _ => None,
            };
            match check(&expect, &answer, unknown.as_ref()) {
                Ok(()) => row.push(answer.status.as_u16().to_string()),
                Err(why) => {
                    row.push(format!("{}✗", answer.status.as_u16()));
                    let body: String = answer.body.chars().take(300).collect();
                    wrong.push(format!("{} [{}]: {why}; body: {body}", op.label(), attack.column()));
                }
            }
        }
        rows.push((op.label(), row));
    }
    let after = Stored::read(&app, &tokens.estate.a_admin).await;

    print_matrix(&rows);
    assert!(doc_problems.is_empty(), "operations the matrix could not attack:\n  {}", doc_problems.join("\n  "));
    let written = after.diff(&before);
    assert!(wrong.is_empty() && written.is_empty(), "{} wrong cells:\n  {}\nwritten by the matrix:\n{}", wrong.len(), wrong.join("\n  "), written);
}

fn print_matrix(rows: &[(String, Vec<String>)]) {
    let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    let mut out = String::from("\nThe attacker's matrix (status per cell; ✗ = not what was expected; · = not applicable)\n");
    out += &format!("{:width$}", "");
    for a in ATTACKS {
        out += &format!(" {:>8}", a.column());
    }
    out += "\n";
    for (label, cells) in rows {
        out += &format!("{label:width$}");
        for c in cells {
            out += &format!(" {c:>8}");
        }
        out += "\n";
    }
    out += "\nColumns:\n";
    for a in ATTACKS {
        out += &format!("  {:>8}  {}\n", a.column(), a.legend());
    }
    out += "Not applicable: JWT attacks on agent routes and agent attacks on JWT routes; tenant B on a route naming none of A's resources \
            (B acting on B); other runtimes on agent routes naming no job (a runtime acting as itself); the role cell where no permission is needed:\n";
    for (m, p, why) in NO_PERMISSION_NEEDED {
        out += &format!("  {m} {p}: {why}\n");
    }
    println!("{out}");
}
