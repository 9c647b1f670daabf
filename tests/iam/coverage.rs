//! Every AWS request each function makes is granted to its role, and each
//! role grants nothing its function never asks for.

use crate::template::{Statement, Template, glob};
use berth_aws::ResourceNames;
use berth_aws::calls::AwsCall;
use berth_domain::usecases::Settings;
use berth_tests::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;

/// Berth's functions, as `berth_aws::calls` names them, and their resources in the template.
const FUNCTIONS: [(&str, &str); 6] = [
    ("api", "ApiFunction"),
    ("agent-gateway", "AgentGatewayFunction"),
    ("webhooks", "WebhooksFunction"),
    ("dispatcher", "DispatcherFunction"),
    ("packager", "PackagerFunction"),
    ("sweeper", "SweeperFunction"),
];

/// Grants a role needs that the scenario does not exercise, as
/// (function, action, resource pattern, why). Keep it short: each entry is a
/// grant no test proves needed.
const NOT_EXERCISED: &[(&str, &str, &str, &str)] = &[
    // Clean-ups after a failure the scenario cannot cause on LocalStack.
    ("api", "s3:AbortMultipartUpload", PACKAGES, "an archive over 8 MiB whose multipart upload fails midway is abandoned"),
    ("api", "s3:DeleteObject", PACKAGES, "the archive of a package whose record is refused after the upload (a version taken meanwhile) is removed"),
    ("webhooks", "s3:AbortMultipartUpload", PACKAGES, "as for the api: package_and_deploy writes archives the same way"),
    ("webhooks", "s3:DeleteObject", PACKAGES, "as for the api"),
    ("webhooks", "dynamodb:DeleteItem", TABLE, "a delivery failing on our side (500/503) gives its id back for the retry"),
    // The dispatcher settles a deployment too: when no runtime is left to send it to
    // (all detached after the request) or its message is delivered for the last time,
    // and when a redelivered message finds its jobs ended (the gateway's settle, exercised).
    ("dispatcher", "dynamodb:UpdateItem", TABLE, "settling at dispatch (see above)"),
    ("dispatcher", "dynamodb:DeleteItem", TABLE, "settling at dispatch releases the deployment's lock"),
    ("dispatcher", "sqs:SendMessage", DEPLOYMENTS, "settling at dispatch may request an automatic rollback"),
    // What the Lambda event source mapping does with the function's role (the local runner only receives and deletes).
    ("dispatcher", "sqs:ChangeMessageVisibility", DEPLOYMENTS, "the event source mapping"),
    ("dispatcher", "sqs:GetQueueAttributes", DEPLOYMENTS, "the event source mapping"),
    ("sweeper", "dynamodb:UpdateItem", TABLE, "settling an overdue deployment whose other targets succeeded (as the gateway does)"),
    // The webhook's package in the scenario is small: built in the delivery, as before.
    ("webhooks", "sqs:SendMessage", PACKAGE_BUILDS, "a package_and_deploy whose package is above BERTH_SYNC_PACKAGE_MAX_BYTES queues its build"),
    // The scenario's build succeeds on its first delivery.
    ("packager", "dynamodb:PutItem", TABLE, "a failed build is audited (package.build_failed: the event and the chain's head)"),
    ("packager", "s3:DeleteObject", PACKAGES, "an archive a crashed delivery left behind is written again"),
    ("packager", "s3:AbortMultipartUpload", PACKAGES, "an archive over 8 MiB whose multipart upload fails midway is abandoned"),
    ("packager", "sqs:ChangeMessageVisibility", PACKAGE_BUILDS, "the event source mapping"),
    ("packager", "sqs:GetQueueAttributes", PACKAGE_BUILDS, "the event source mapping"),
];
const TABLE: &str = "${Table.Arn}";
const PACKAGES: &str = "${PackageBucket.Arn}/tenants/*";
const DEPLOYMENTS: &str = "${DeploymentsQueue.Arn}";
const PACKAGE_BUILDS: &str = "${PackageBuildsQueue.Arn}";

/// An IAM action on a resource (an ARN in the template's symbolic form, e.g.
/// `${Table.Arn}`), with the keys of the request's KMS encryption context (none for other services).
type Need = (String, String, BTreeSet<String>);

#[tokio::test]
async fn every_aws_call_of_each_function_is_granted_to_its_role_and_each_role_grants_only_what_its_function_calls() {
    berth_aws::calls::start_recording();
    // Long enough for every job but the one made to overrun it (on a busy machine too).
    // Uploads over 5 MiB are multipart, so that a modest one exercises it; packages above 64 bytes are built by
    // the packager: the scenario makes one.
    let settings =
        Settings { job_deadline: chrono::Duration::seconds(15), upload_part_bytes: 5 * 1024 * 1024, sync_package_max_bytes: 64, ..Settings::default() };
    let app = TestApp::spawn_with(settings).await;
    let from = berth_aws::calls::recorded().len();
    scenario(&app).await;
    let calls = berth_aws::calls::recorded().split_off(from);
    let outside: Vec<&AwsCall> = calls.iter().filter(|c| c.function.is_none()).collect();
    assert!(outside.is_empty(), "every call once Berth serves is made by one of its functions: {outside:#?}");

    let template = Template::load();
    let mut functions = template.resources_of("AWS::Serverless::Function");
    functions.sort();
    let mut known: Vec<String> = FUNCTIONS.iter().map(|(_, f)| f.to_string()).collect();
    known.sort();
    assert_eq!(functions, known, "the template's functions are the six this test knows");

    let mut missing = vec![];
    let mut unused = vec![];
    let mut report = String::new();
    for (function, logical_id) in FUNCTIONS {
        let names = Names::bind(&template, logical_id, &app.names);
        let mut needs: BTreeSet<Need> = BTreeSet::new();
        for call in calls.iter().filter(|c| c.function == Some(function)) {
            match names.needs(call) {
                Ok(n) => needs.extend(n),
                Err(e) => missing.push(format!("{function}: {e}")),
            }
        }
        assert!(!needs.is_empty(), "the scenario makes {function} call AWS");
        let role = template.role_of(logical_id);
        let statements = template.statements_of(&role);
        for (action, resource, context) in &needs {
            if !granted(&statements, action, resource, context) {
                missing.push(format!("{function} ({role}) calls {action} on {resource}"));
            }
        }
        for statement in statements.iter().filter(|s| s.allow) {
            for action in &statement.actions {
                for pattern in &statement.resources {
                    let used = needs.iter().any(|(a, r, c)| glob(&action.to_lowercase(), &a.to_lowercase()) && glob(pattern, r) && holds(statement, c));
                    let excused = NOT_EXERCISED.iter().any(|(f, a, r, _)| *f == function && a == action && r == pattern) || action.starts_with("logs:");
                    if !used && !excused {
                        unused.push(format!("{function} ({role}, {}): {action} on {pattern}", statement.sid));
                    }
                }
            }
        }
        let shown: BTreeSet<String> = needs.iter().map(|(a, r, c)| format!("  {a:<32} {}{}", anonymous(r), context_shown(c))).collect();
        report.push_str(&format!("{function} ({role}):\n{}\n", shown.into_iter().collect::<Vec<_>>().join("\n")));
    }
    // The coverage list, for a reviewer (`cargo nextest run -p berth-tests --test iam --no-capture`).
    eprintln!("{report}");
    assert!(missing.is_empty(), "calls the template does not grant:\n{}", missing.join("\n"));
    assert!(unused.is_empty(), "grants no call of the scenario needs (remove them, or list them in NOT_EXERCISED with the reason):\n{}", unused.join("\n"));
}

/// KMS is granted only under a tenant's encryption context, which
/// `Names::need` checks every KMS request carries.
const TENANT_CONTEXT: &str = "Null kms:EncryptionContext:tenant_id false";

/// Allowed by a statement of the role (its conditions holding for the
/// request's encryption context keys) and denied by none.
fn granted(statements: &[Statement], action: &str, resource: &str, context: &BTreeSet<String>) -> bool {
    let matches = |s: &&Statement| {
        s.actions.iter().any(|a| glob(&a.to_lowercase(), &action.to_lowercase())) && s.resources.iter().any(|r| glob(r, resource)) && holds(s, context)
    };
    statements.iter().filter(|s| s.allow).any(|s| matches(&s)) && !statements.iter().filter(|s| !s.allow).any(|s| matches(&s))
}

/// Whether the statement's conditions hold for a request whose KMS
/// encryption context has `keys`. The conditions the roles use: a context key
/// present (`Null ... false`), the keys all among a list (`ForAllValues`);
/// any other is refused, as this test would not check it.
fn holds(statement: &Statement, keys: &BTreeSet<String>) -> bool {
    statement.conditions.iter().all(|condition| {
        let parts: Vec<&str> = condition.splitn(3, ' ').collect();
        match parts[..] {
            ["Null", key, "false"] => key.strip_prefix("kms:EncryptionContext:").is_some_and(|k| keys.contains(k)),
            ["ForAllValues:StringEquals", "kms:EncryptionContextKeys", allowed] => keys.iter().all(|k| allowed.split(',').any(|a| a == k)),
            _ => panic!("a condition this test does not check: {condition} ({})", statement.sid),
        }
    })
}

fn context_shown(keys: &BTreeSet<String>) -> String {
    if keys.is_empty() { String::new() } else { format!(" (context {})", keys.iter().cloned().collect::<Vec<_>>().join(", ")) }
}

#[test]
fn the_roles_open_webhook_secrets_and_extension_secrets_apart_though_one_key_seals_both() {
    let template = Template::load();
    let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    let (webhook, extension) = (keys(&["tenant_id"]), keys(&["tenant_id", "environment_id", "component_id", "field"]));
    let key = "${WebhookSecretsKey.Arn}";
    let opens = |function: &str, context: &BTreeSet<String>| granted(&template.statements_of(&template.role_of(function)), "kms:Decrypt", key, context);
    assert!(opens("WebhooksFunction", &webhook) && !opens("WebhooksFunction", &extension), "the webhooks function opens webhook secrets only");
    assert!(opens("AgentGatewayFunction", &extension) && !opens("AgentGatewayFunction", &webhook), "the agent gateway opens extension secrets only");
    assert!(!opens("ApiFunction", &extension) && !opens("ApiFunction", &webhook), "the api only seals");
}

/// Ids replaced by `<id>` so the list reads as one line per kind of request.
fn anonymous(resource: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hexish = word.len() >= 32 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        out.push_str(if hexish { "<id>" } else { word });
        word.clear();
    };
    for c in resource.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The concrete names this test's Berth used, bound to the template's
/// resources through the variables the template gives the function (e.g.
/// `BERTH_TABLE: !Ref Table`: the table the code calls is `${Table.Arn}`).
struct Names {
    table: (String, String),
    bucket: (String, String),
    deployments_queue: (String, String),
    package_builds_queue: (String, String),
    /// The per-runtime queues' name prefix and the template's (`${AWS::StackName}-`).
    queue_prefix: (String, String),
    kms_key: (String, String),
    queue_role: Option<(String, String)>,
}

impl Names {
    fn bind(template: &Template, function: &str, names: &ResourceNames) -> Names {
        let env = template.environment_of(function);
        let var = |k: &str| env.get(k).cloned().unwrap_or_else(|| panic!("the template sets {k} for {function}"));
        Names {
            table: (names.table.clone(), arn(&var("BERTH_TABLE"))),
            bucket: (names.bucket.clone(), arn(&var("BERTH_BUCKET"))),
            deployments_queue: (names.deployments_queue.clone(), arn(&var("BERTH_DEPLOYMENTS_QUEUE"))),
            package_builds_queue: (names.package_builds_queue.clone(), arn(&var("BERTH_PACKAGE_BUILDS_QUEUE"))),
            queue_prefix: (names.queue_prefix.clone(), var("BERTH_QUEUE_PREFIX")),
            kms_key: (names.kms_key_id.clone(), arn(&var("BERTH_KMS_KEY_ID"))),
            queue_role: env.get("BERTH_AGENT_QUEUE_ROLE_ARN").map(|role| (names.queue_role_arn.clone().expect("a queue role in tests"), role.clone())),
        }
    }

    /// The IAM actions and resources `call` needs.
    fn needs(&self, call: &AwsCall) -> Result<Vec<Need>, String> {
        if call.service == "KMS" && !call.targets.iter().any(|(part, _)| part == "EncryptionContext:tenant_id") {
            return Err(format!("KMS {} without a tenant_id encryption context: the role's condition ({TENANT_CONTEXT}) refuses it", call.operation));
        }
        let context: BTreeSet<String> = call.targets.iter().filter_map(|(part, _)| part.strip_prefix("EncryptionContext:")).map(str::to_string).collect();
        let parts = call.targets.iter().filter(|(part, _)| !part.starts_with("EncryptionContext:"));
        parts.map(|(part, resource)| self.need(call, part, resource).map(|(action, resource)| (action, resource, context.clone()))).collect()
    }

    fn need(&self, call: &AwsCall, part: &str, resource: &str) -> Result<(String, String), String> {
        let (service, op) = (call.service.as_str(), call.operation.as_str());
        let unknown = || format!("{service} {op} {part} on {resource}: not mapped to IAM by this test");
        Ok(match service {
            // A transaction is authorised per item, as the item's own action.
            "DynamoDB" => {
                let action = match (op, part) {
                    (_, "Put") => "PutItem",
                    (_, "Update") => "UpdateItem",
                    (_, "Delete") => "DeleteItem",
                    (_, "ConditionCheck") => "ConditionCheckItem",
                    (_, "Get") => "GetItem",
                    (op, "") => op,
                    _ => return Err(unknown()),
                };
                let (table, index) = resource.split_once("/index/").map_or((resource, None), |(t, i)| (t, Some(i)));
                let arn = self.named(&self.table, table).ok_or_else(unknown)?;
                (format!("dynamodb:{action}"), index.map_or(arn.clone(), |i| format!("{arn}/index/{i}")))
            }
            // Multipart uploads are authorised as s3:PutObject; a presigned GET or PUT as the
            // signer's s3:GetObject or s3:PutObject; a copy as s3:GetObject on its source and s3:PutObject on its target.
            "S3" => {
                let action = match (op, part) {
                    (_, "CopySource") => "GetObject",
                    ("GetObject" | "HeadObject", "") => "GetObject",
                    ("PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" | "CopyObject", "") => "PutObject",
                    ("ListParts", "") => "ListMultipartUploadParts",
                    ("AbortMultipartUpload" | "DeleteObject", "") => op,
                    _ => return Err(unknown()),
                };
                let (bucket, key) = resource.split_once('/').ok_or_else(unknown)?;
                (format!("s3:{action}"), format!("{}/{key}", self.named(&self.bucket, bucket).ok_or_else(unknown)?))
            }
            // CreateQueue with tags needs sqs:TagQueue as well.
            "SQS" => {
                let action = match (op, part) {
                    (_, "Tags") => "TagQueue",
                    ("SendMessageBatch", "") => "SendMessage",
                    ("DeleteMessageBatch", "") => "DeleteMessage",
                    (op, "") => op,
                    _ => return Err(unknown()),
                };
                (format!("sqs:{action}"), self.queue(resource).ok_or_else(unknown)?)
            }
            "KMS" => (format!("kms:{op}"), self.named(&self.kms_key, resource).ok_or_else(unknown)?),
            "STS" => (format!("sts:{op}"), self.queue_role.as_ref().and_then(|r| self.named(r, resource)).ok_or_else(unknown)?),
            _ => return Err(unknown()),
        })
    }

    fn named(&self, (concrete, symbolic): &(String, String), name: &str) -> Option<String> {
        (name == concrete).then(|| symbolic.clone())
    }

    fn queue(&self, name: &str) -> Option<String> {
        if let Some(arn) = self.named(&self.deployments_queue, name).or_else(|| self.named(&self.package_builds_queue, name)) {
            return Some(arn);
        }
        let (prefix, template_prefix) = &self.queue_prefix;
        let rest = name.strip_prefix(prefix.as_str())?;
        Some(format!("arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{template_prefix}{rest}"))
    }
}

/// The ARN of the resource a variable names: `${X}` (a `!Ref`) or `${X.Attr}` is `${X.Arn}`.
fn arn(symbol: &str) -> String {
    let logical = symbol.strip_prefix("${").and_then(|s| s.strip_suffix('}')).unwrap_or_else(|| panic!("a reference to a resource: {symbol}"));
    format!("${{{}.Arn}}", logical.split('.').next().unwrap_or(logical))
}

/// One of each kind of work: a runtime and its agent (registration,
/// heartbeats, queue credentials, job claims and reports), content and
/// packages (upload, archive, presigned download, an archive removed when its
/// package is refused, one above the synchronous limit built by the packager
/// while a latest-revision deploy waits for it), a scheduled deployment the sweeper releases, a failed
/// deployment rolled back automatically and then retried, a webhook (its
/// secret sealed and opened) whose delivery packages and deploys, an
/// environment's extension secret (sealed, then opened for a job), the tenants
/// list, `jobs/next`, a runtime's deletion, presigned uploads (multipart, and one
/// refused), and a job past its deadline. The dispatcher runs throughout.
async fn scenario(app: &TestApp) {
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &runtime).await;
    let broken = tempfile::tempdir().expect("a temporary directory");
    let fails = |version: &str| broken.path().join(version);
    // A version fails to apply while a file named after it exists; it overruns its deadline while `<version>.slow` does.
    let dir = broken.path().display();
    let _agent = Agent::start(app, &runtime, Some(&format!("if [ -f {dir}/$BERTH_VERSION.slow ]; then sleep 30; fi; test ! -f {dir}/$BERTH_VERSION")));
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let v1 = app.package(&acme, &orders, Some("1.0.0")).await;
    assert!(!app.download(&acme, &v1).await.is_empty(), "the package downloads");
    let again = json!({"component_id": orders["id"], "version": "1.0.0"});
    expect_status(app.post("/v1/packages", &acme.admin, again).await, StatusCode::CONFLICT).await;
    // Above the synchronous limit: a latest-revision deploy whose package the api
    // queues and the packager builds, then queues the deployment that waited for it.
    let big = app.component(&acme, "Nightly", "process", &[b'n'; 100], &[]).await;
    app.pause_package_builds().await;
    let body = json!({"component_id": big["id"], "environment_id": test["id"], "latest_revision": true});
    let waiting = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(waiting["waiting_for_package"], true, "{waiting}");
    app.resume_package_builds();
    app.wait_for_status(&acme, &waiting, "succeeded").await;

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let body = json!({"package_id": v1["id"], "environment_id": test["id"], "scheduled_at": soon});
    let scheduled = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(scheduled["status"], "scheduled", "{scheduled}");
    app.wait_for_status(&acme, &scheduled, "succeeded").await;

    app.revise(&acme, &orders, b"orders v2").await;
    let v2 = app.package(&acme, &orders, Some("2.0.0")).await;
    std::fs::write(fails("2.0.0"), b"").expect("2.0.0 will fail");
    let d2 = app.deploy(&acme, &v2, &test, "fails, then is retried").await;
    app.wait_for_status(&acme, &d2, "rolled_back").await;
    std::fs::remove_file(fails("2.0.0")).expect("2.0.0 will apply");
    let retried = app.request(reqwest::Method::POST, &format!("/v1/deployments/{}/retry", id_of(&d2)), Some(&acme.admin)).send().await.expect("sent");
    expect_status(retried, StatusCode::OK).await;
    app.wait_for_status(&acme, &d2, "succeeded").await;

    app.set_policy(&acme, &test, json!({"auto_rollback": true})).await;
    app.revise(&acme, &orders, b"orders v3").await;
    let v3 = app.package(&acme, &orders, Some("3.0.0")).await;
    std::fs::write(fails("3.0.0"), b"").expect("3.0.0 will fail");
    let d3 = app.deploy(&acme, &v3, &test, "fails and is rolled back automatically").await;
    app.wait_for_status(&acme, &d3, "rolled_back").await;
    let rollback = eventually("an automatic rollback is requested", || async {
        let deployments = expect_status(app.get("/v1/deployments?limit=100", &acme.admin).await, StatusCode::OK).await;
        let all = deployments["items"].as_array().cloned().unwrap_or_default();
        all.into_iter().find(|x| x["requested_by"] == "system:auto-rollback").ok_or_else(|| deployments.to_string())
    })
    .await;
    app.wait_for_status(&acme, &rollback, "succeeded").await;
    assert_eq!(app.active(&acme, &test).await[0]["package_id"], v2["id"], "2.0.0 is back");

    let hook = app.webhook(&acme, &test, &orders, "package_and_deploy").await;
    let secret = hook["secret"].as_str().expect("the secret, shown once").to_string();
    app.revise(&acme, &orders, b"orders v4").await;
    let body = json!({"version": "4.0.0", "notes": "from CI"}).to_string();
    let receipt = expect_status(app.deliver(&hook, &secret, "build-1", &body).await, StatusCode::ACCEPTED).await;
    app.wait_for_status(&acme, &json!({"id": receipt["deployment_id"]}), "succeeded").await;
    let status = expect_status(app.delivery_status(&hook, &secret, "build-1").await, StatusCode::OK).await;
    assert_eq!(status["status"], "succeeded", "{status}");

    // An environment's secret extension value: the api seals it (kms:Encrypt, under the tenant's context and more).
    let points = json!({"connection_fields": [{"name": "password", "secret": true, "required": true}]});
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": points});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    let values = json!({"components": {id_of(&crm): {"connection": {"password": "iam-scenario-password"}}}});
    let path = format!("/v1/environments/{}/extensions", id_of(&test));
    let put = app.request(reqwest::Method::PUT, &path, Some(&acme.admin)).header("If-Match", "\"0\"").json(&values).send().await.expect("sent");
    expect_status(put, StatusCode::OK).await;
    // The agent gateway opens it for a job of a package bundling the connection (kms:Decrypt under the same context).
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let with_values = app.package(&acme, &sync, Some("1.0.0")).await;
    let d = app.deploy(&acme, &with_values, &test, "applies with the environment's values").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    // A connection test: the api records it, the gateway hands it out with a heartbeat and records its result.
    let connection = format!("/v1/environments/{}/connections/{}", id_of(&test), id_of(&crm));
    expect_status(app.post(&format!("{connection}/test"), &acme.admin, json!({})).await, StatusCode::CREATED).await;
    eventually("the connection test ends", || async {
        let now = expect_status(app.get(&connection, &acme.admin).await, StatusCode::OK).await;
        if now["last_test"]["status"] == "failed" { Ok(()) } else { Err(now.to_string()) }
    })
    .await;

    // Presigned uploads: a multipart one completed into a revision (assembled, read, copied, removed), and one refused.
    let library = app.component(&acme, "Library", "custom_library", b"v1", &[]).await;
    let uploads = format!("/v1/components/{}/uploads", id_of(&library));
    let bytes: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let upload =
        expect_status(app.post(&uploads, &acme.admin, json!({"size": bytes.len(), "sha256": berth_tests::sha256(&bytes)})).await, StatusCode::CREATED).await;
    let parts = upload["parts"].as_array().cloned().expect("a multipart upload");
    for (part, chunk) in parts.iter().zip(bytes.chunks(5 * 1024 * 1024)) {
        let put = app.http.put(part["url"].as_str().expect("a url")).body(chunk.to_vec()).send().await.expect("sent");
        assert!(put.status().is_success(), "{}", put.status());
    }
    let complete = format!("{uploads}/{}/complete", upload["upload_id"].as_str().expect("an id"));
    expect_status(app.post(&complete, &acme.admin, json!({})).await, StatusCode::CREATED).await;
    let wrong = expect_status(app.post(&uploads, &acme.admin, json!({"size": 3, "sha256": berth_tests::sha256(b"abc")})).await, StatusCode::CREATED).await;
    let put = app.http.put(wrong["url"].as_str().expect("a url")).body(b"xyz".to_vec()).send().await.expect("sent");
    assert!(put.status().is_success(), "{}", put.status());
    let complete = format!("{uploads}/{}/complete", wrong["upload_id"].as_str().expect("an id"));
    expect_problem(app.post(&complete, &acme.admin, json!({})).await, StatusCode::UNPROCESSABLE_ENTITY, "upload_digest_mismatch").await;

    let tenants = expect_status(app.get("/platform/v1/tenants", &app.platform_token()).await, StatusCode::OK).await;
    assert!(tenants["items"].as_array().is_some_and(|t| t.iter().any(|t| t["id"] == acme.id)), "{tenants}");

    let spare = app.runtime(&acme, "spare").await;
    let credential = app.register_agent(&spare).await;
    let next = app.request(reqwest::Method::GET, "/agent/v1/jobs/next?wait=0", Some(&credential)).send().await.expect("sent");
    assert_eq!(next.status(), StatusCode::NO_CONTENT, "no job for a runtime in no environment");
    expect_status(app.delete(&format!("/v1/runtimes/{}", id_of(&spare)), &acme.admin).await, StatusCode::NO_CONTENT).await;

    // Last, as the agent stays busy with it: a job past its deadline, failed by the sweeper.
    app.set_policy(&acme, &test, json!({"auto_rollback": false})).await;
    app.revise(&acme, &orders, b"orders v5").await;
    let v5 = app.package(&acme, &orders, Some("5.0.0")).await;
    std::fs::write(fails("5.0.0.slow"), b"").expect("5.0.0 will overrun");
    let d5 = app.deploy(&acme, &v5, &test, "overruns its deadline").await;
    let path = format!("/v1/deployments/{}/targets", id_of(&d5));
    app.wait_for_status(&acme, &d5, "failed").await;
    let targets = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
    assert!(targets["items"][0]["message"].as_str().is_some_and(|m| m.contains("deadline")), "the sweeper failed it: {targets}");
}
