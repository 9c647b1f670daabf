//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::uploads::views::{CompleteUploadBody, StartUpload, UploadPartView, UploadView};
use crate::routes::*;
use crate::routes::{
    api_keys::views::*, approvals::views::*, change_requests::views::*, components::views::*, deployments::views::*, environments::views::*,
    extensions::views::*, governance::views::*, me::views::*, packages::views::*, runtimes::views::*, tenants::views::*, usage::views::*, webhooks::views::*,
};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", version = "1", description = "Deployment control plane for integration platforms."),
    paths(
        me, create_tenant, list_tenants, get_tenant, patch_tenant,
        create_environment, list_environments, get_environment, patch_environment, delete_environment,
        attach_runtime, detach_runtime, list_environment_runtimes,
        create_runtime, list_runtimes, get_runtime, delete_runtime, issue_registration_token, revoke_runtime,
        create_component, list_components, get_component, create_revision, list_revisions, get_revision, start_upload, complete_upload,
        create_package, list_packages, get_package, download_package, delete_package,
        validate_deployment, create_deployment, list_deployments, get_deployment, list_targets, list_events, cancel_deployment, retry_deployment, halt_deployment, resume_deployment,
        active_versions, undeploy, roll_back, lift_quarantine, decide, get_policy, put_policy, get_extensions, put_extensions, deploy_extensions, test_connection, get_connection,
        change_requests::create, change_requests::list, change_requests::get, change_requests::patch, change_requests::submit,
        change_requests::decide, change_requests::deploy, change_requests::complete, change_requests::validate, change_requests::scan,
        approvals::pending, usage::usage,
        list_audit, verify_audit,
        create_webhook, list_webhooks, get_webhook, patch_webhook, delete_webhook, rotate_secret, list_deliveries,
        create_api_key, list_api_keys, get_api_key, revoke_api_key,
    ),
    components(schemas(crate::views::ProblemView, crate::views::FieldErrorView, MeView, TenantView, PlanView, PlanInput, CreateTenant, PatchTenant, EnvironmentView, CreateEnvironment, PatchEnvironment, RuntimeView, CreateRuntime, IssueRegistrationToken,
        ComponentView, RevisionView, CreateComponent, CreateRevision, StartUpload, UploadView, UploadPartView, CompleteUploadBody, CreatePackage, PackageView, DownloadView,
        DeploymentView, CreateDeployment, ValidationView, IssueView, TargetView, EventView, ActiveVersionView,
        ApprovalView, CreateApproval, PolicyBody, ExtensionPointsBody, ConnectionFieldBody, PropertyBody, LookupBody, PutExtensions, ExtensionsBody, DeployExtensions, ConnectionView, ConnectionTestView, ChangeRequestView, ChangeItemView, CreateChangeRequest, PatchChangeRequest, ChangeItemInput, RollbackRequest, DeployChangeRequest,
        WebhookView, WebhookWithSecretView, CreateWebhook, PatchWebhook, RotateSecret, DeliveryView,
        ActiveVersionsView, QuarantinedVersionView,
        ChangeValidationView, ItemValidationView, ChangeScanView, ItemScanView, RevisedComponentView,
        PendingDecisionView, UsageView, AllowanceView, LicenceUseView, LicensedConnectionView,
        ActiveVersionsView, QuarantinedVersionView, crate::routes::deployments::rollout::RolloutBody, crate::routes::deployments::rollout::AutoRetryBody,
        ApiKeyView, CreateApiKey)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("A JWT from the identity provider; on /v1 (not /platform/v1), an API key `bak_…` too (POST /v1/api-keys)."))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// The whole document of the one HTTP API: the portal and platform routes
/// served here, and the agent routes the agent gateway serves beside them.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(berth_agent_gateway::openapi());
    doc.merge(berth_webhooks::openapi());
    declare_path_parameters(&mut doc);
    constrain_parameters(&mut doc);
    optional_bodies_are_left_out_not_null(&mut doc);
    declare_problem_responses(&mut doc);
    declare_headers(&mut doc);
    doc
}

/// utoipa spells an `Option<T>` request body as "null or T"; the server reads
/// a body that may be left out (`OptionalJsonBody`) as absent or T, never
/// `null`: so such a body is T, not required.
fn optional_bodies_are_left_out_not_null(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{Schema, Type};
    use utoipa::openapi::{RefOr, Required};
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options, &mut item.trace];
        for body in operations.into_iter().flatten().filter_map(|op| op.request_body.as_mut()) {
            for content in body.content.values_mut() {
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else { continue };
                let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == Type::Null.into());
                let mut rest = one_of.items.iter().filter(|s| !is_null(s));
                if let (Some(only), None, true) = (rest.next(), rest.next(), one_of.items.iter().any(is_null)) {
                    content.schema = Some(only.clone());
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

/// States in each parameter's schema what the server checks, for the
/// parameters every list (or several routes) share: `limit` is 1 to 100
/// (`PageRequest`), an id is a UUID, `revision` a `u32` from 1, a time RFC 3339,
/// `status` a deployment status.
fn constrain_parameters(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    const DEPLOYMENT_STATUSES: [&str; 12] = [
        "pending_approval",
        "approved",
        "scheduled",
        "queued",
        "in_progress",
        "succeeded",
        "failed",
        "partially_failed",
        "rolled_back",
        "superseded",
        "cancelled",
        "rejected",
    ];
    let format = |known| Some(SchemaFormat::KnownFormat(known));
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options, &mut item.trace];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                let schema = match (&parameter.parameter_in, parameter.name.as_str()) {
                    (ParameterIn::Query, "limit") => {
                        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(berth_domain::page::PageRequest::MAX_LIMIT))
                    }
                    (ParameterIn::Path, "revision") => ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(u32::MAX)),
                    (ParameterIn::Query, "from" | "to") => ObjectBuilder::new().schema_type(Type::String).format(format(KnownFormat::DateTime)),
                    (ParameterIn::Query, "status") => ObjectBuilder::new().schema_type(Type::String).enum_values(Some(DEPLOYMENT_STATUSES)),
                    (ParameterIn::Path | ParameterIn::Query, name) if name == "id" || name.ends_with("_id") && !matches!(name, "entity_id" | "delivery_id") => {
                        ObjectBuilder::new().schema_type(Type::String).format(format(KnownFormat::Uuid))
                    }
                    _ => continue,
                };
                parameter.schema = Some(RefOr::T(Schema::Object(schema.build())));
            }
        }
    }
}

/// The error statuses any operation may answer (with a problem+json body),
/// whatever its annotation lists: malformed input (400), no or a bad
/// credential (401), not allowed (403), not found or another tenant's (404),
/// a conflict (409), a stale `If-Match` (412), too large (413), not JSON (415),
/// invalid fields (422), rate or quota (429), and our side (500, 503).
const PROBLEM_STATUSES: [(&str, &str); 12] = [
    ("400", "Malformed request"),
    ("401", "No credential, or one that does not verify"),
    ("403", "The caller may not do this"),
    ("404", "Not found (or another tenant's)"),
    ("409", "Conflicts with the current state; `code` says how"),
    ("412", "If-Match does not name the current version"),
    ("413", "The body is too large"),
    ("415", "The body is not JSON"),
    ("422", "Invalid fields, listed in `errors`"),
    ("429", "Too many requests or a plan quota; see Retry-After"),
    ("500", "Something went wrong on our side"),
    ("503", "Storage is busy; retry after Retry-After"),
];

/// Documents every error status of every operation as problem+json with the
/// `ProblemView` schema: where the annotation named a status without a body,
/// the body is added; where it did not name it, the response is added.
fn declare_problem_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemView"))).build();
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options, &mut item.trace];
        for operation in operations.into_iter().flatten() {
            for (status, description) in PROBLEM_STATUSES {
                match operation.responses.responses.get_mut(status) {
                    Some(RefOr::T(response)) if response.content.is_empty() => {
                        response.content.insert("application/problem+json".to_string(), problem());
                    }
                    Some(_) => {}
                    None => {
                        let response = ResponseBuilder::new().description(description).content("application/problem+json", problem()).build();
                        operation.responses.responses.insert(status.to_string(), RefOr::T(response));
                    }
                }
            }
        }
    }
}

/// The operations that take `If-Match` (optimistic concurrency): an update
/// names the version it read, from the `ETag` of the `GET` at the same path
/// (for a revision, the component's).
const IF_MATCH_OPERATIONS: [(&str, &str, &str); 8] = [
    ("patch", "/platform/v1/tenants/{id}", "/platform/v1/tenants/{id}"),
    ("patch", "/v1/environments/{id}", "/v1/environments/{id}"),
    ("put", "/v1/environments/{id}/policy", "/v1/environments/{id}/policy"),
    ("put", "/v1/environments/{id}/extensions", "/v1/environments/{id}/extensions"),
    ("post", "/v1/components/{id}/revisions", "/v1/components/{id}"),
    ("post", "/v1/components/{id}/uploads/{upload_id}/complete", "/v1/components/{id}"),
    ("patch", "/v1/change-requests/{id}", "/v1/change-requests/{id}"),
    ("patch", "/v1/webhooks/{id}", "/v1/webhooks/{id}"),
];

/// The updates refused 428 without `If-Match` (blind writes would lose
/// another admin's values).
const IF_MATCH_REQUIRED: [&str; 1] = ["/v1/environments/{id}/extensions"];

/// Declares the headers the routers read and write around the handlers, so a
/// generated client knows them: `Idempotency-Key` on every portal and
/// platform `POST` (the idempotency layer) with `Idempotent-Replayed` on its
/// successes; `If-Match` on the updates above, and `ETag` on their successes
/// and on the `GET`s whose version they name.
fn declare_headers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Required};
    let string = |pattern: Option<&str>| ObjectBuilder::new().schema_type(Type::String).pattern(pattern).build();
    let header = |operation: &mut Operation, name: &str, description: &str, pattern: Option<&str>, required: bool| {
        let parameter = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(if required { Required::True } else { Required::False })
            .description(Some(description))
            .schema(Some(string(pattern)))
            .build();
        operation.parameters.get_or_insert_with(Vec::new).push(parameter);
    };
    let on_success = |operation: &mut Operation, name: &str, description: &str| {
        for (status, response) in operation.responses.responses.iter_mut() {
            if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                let value = HeaderBuilder::new().schema(string(None)).description(Some(description)).build();
                response.headers.insert(name.to_string(), value);
            }
        }
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if let (true, Some(post)) = (path.starts_with("/v1/") || path.starts_with("/platform/v1/"), item.post.as_mut()) {
            header(
                post,
                "Idempotency-Key",
                "Makes the request safe to retry: the same key with the same body gets the first response again.",
                Some("^[!-~]{1,200}$"),
                false,
            );
            on_success(post, "Idempotent-Replayed", "`true` when this is the stored response to an earlier request with the same Idempotency-Key.");
        }
    }
    for (method, path, read) in IF_MATCH_OPERATIONS {
        if let Some(item) = doc.paths.paths.get_mut(path) {
            let operation = match method {
                "patch" => item.patch.as_mut(),
                "put" => item.put.as_mut(),
                _ => item.post.as_mut(),
            };
            if let Some(operation) = operation {
                let required = IF_MATCH_REQUIRED.contains(&path);
                let description = if required {
                    "The ETag of the version this change is based on: required (428 without it); a stale one gets 412."
                } else {
                    "The ETag of the version this change is based on; a stale one gets 412."
                };
                header(operation, "If-Match", description, Some(r#"^(W/)?"[0-9]{1,18}"$"#), required);
                on_success(operation, "ETag", "The new version, for the next If-Match.");
            }
        }
        if let Some(get) = doc.paths.paths.get_mut(read).and_then(|item| item.get.as_mut()) {
            on_success(get, "ETag", "The version read, for If-Match.");
        }
    }
}

/// Declares every `{name}` of every path as a required path parameter of its
/// operations, where the handler's annotation left it out (a client or a
/// fuzzer cannot call an operation whose path parameters are undeclared).
/// `revision` is a number; every other one is an id, a UUID.
fn declare_path_parameters(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    for (path, item) in doc.paths.paths.iter_mut() {
        let names: Vec<&str> = path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect();
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options, &mut item.trace];
        for operation in operations.into_iter().flatten() {
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            for name in &names {
                if parameters.iter().any(|p| p.name == *name && p.parameter_in == ParameterIn::Path) {
                    continue;
                }
                let schema = match *name {
                    "revision" => ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)),
                    _ => ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                };
                parameters.push(ParameterBuilder::new().name(*name).parameter_in(ParameterIn::Path).required(Required::True).schema(Some(schema)).build());
            }
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document()).expect("the document serialises")
    }

    #[test]
    fn the_document_lists_every_agent_route_under_the_runtime_credential_scheme_but_register() {
        let doc = doc();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        for (path, method) in [
            ("/agent/v1/heartbeat", "post"),
            ("/agent/v1/jobs/next", "get"),
            ("/agent/v1/jobs/{id}/events", "post"),
            ("/agent/v1/jobs/{id}/claim", "post"),
            ("/agent/v1/credentials/aws", "post"),
        ] {
            assert_eq!(op(path, method)["security"], serde_json::json!([{"runtime_credential": []}]), "{method} {path}");
        }
        let register = op("/agent/v1/register", "post");
        assert!(register.is_object(), "register is documented");
        assert!(register["security"].is_null(), "register needs no credential: {register}");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["runtime_credential"]["scheme"], "bearer");
        assert_eq!(schemes["bearer"]["bearerFormat"], "JWT", "the portal's scheme is kept");
        assert_eq!(op("/v1/me", "get")["security"], serde_json::json!([{"bearer": []}]));
    }

    #[test]
    fn every_operation_has_its_own_operation_id() {
        let doc = doc();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has an operationId")).to_string();
                if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                    panic!("operationId {id} names both {other} and {method} {path}");
                }
            }
        }
    }

    #[test]
    fn every_update_taking_if_match_declares_it_and_the_etag_of_the_version_it_names() {
        let doc = doc();
        for (method, path, read) in IF_MATCH_OPERATIONS {
            let op = &doc["paths"][path][method];
            let declared = op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "If-Match" && p["in"] == "header");
            assert!(declared, "{method} {path} declares If-Match: {op}");
            let success = op["responses"].as_object().expect("responses").iter().find(|(s, _)| s.starts_with('2')).expect("a success");
            assert!(success.1["headers"]["ETag"].is_object(), "{method} {path} answers an ETag");
            assert!(doc["paths"][read]["get"]["responses"]["200"]["headers"]["ETag"].is_object(), "GET {read} answers an ETag");
        }
    }

    #[test]
    fn every_portal_and_platform_post_takes_an_idempotency_key_and_no_agent_or_hook_post_does() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(post) = item.get("post") else { continue };
            let declared = post["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header");
            let portal = path.starts_with("/v1/") || path.starts_with("/platform/v1/");
            assert_eq!(declared, portal, "POST {path}");
        }
    }

    #[test]
    fn every_operation_documents_every_error_status_as_problem_json() {
        let doc = doc();
        assert!(doc["components"]["schemas"]["ProblemView"]["properties"]["code"].is_object(), "the problem schema is in the document");
        let mut missing = vec![];
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                for (status, _) in PROBLEM_STATUSES {
                    let schema = &op["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"];
                    if schema != "#/components/schemas/ProblemView" {
                        missing.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
        // A documented success stays as it was.
        assert!(doc["paths"]["/v1/me"]["get"]["responses"]["200"]["content"]["application/json"].is_object());
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let doc = doc();
        let mut undeclared = vec![];
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let names = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
            for (method, op) in item.as_object().expect("a path item") {
                for name in names.clone() {
                    let declared =
                        op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true));
                    if !declared {
                        undeclared.push(format!("{method} {path}: {name}"));
                    }
                }
            }
        }
        assert!(undeclared.is_empty(), "{undeclared:?}");
    }

    #[test]
    fn a_deployment_request_requires_its_environment_and_names_a_package_or_the_latest_revision() {
        let doc = doc();
        let schema = &doc["components"]["schemas"]["CreateDeployment"];
        let required = schema["required"].as_array().expect("required fields");
        assert!(required.contains(&Value::from("environment_id")), "{schema}");
        assert!(!required.contains(&Value::from("package_id")), "a latest-revision request has none: {schema}");
        for field in ["latest_revision", "component_id"] {
            assert!(schema["properties"][field].is_object(), "{field}: {schema}");
        }
        for path in ["/v1/usage", "/v1/approvals/pending"] {
            assert!(doc["paths"][path]["get"]["responses"]["200"].is_object(), "{path}");
        }
        for step in ["validate", "scan"] {
            assert!(doc["paths"][format!("/v1/change-requests/{{id}}/{step}")]["post"]["responses"]["200"].is_object(), "{step}");
        }
    }

    /// Resolves a `$ref` to `#/components/schemas/...`, or returns the schema itself.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => &doc["components"]["schemas"][name],
            None => schema,
        }
    }

    /// Every JSON request body refuses unknown fields (`#[serde(deny_unknown_fields)]`,
    /// which utoipa states as `additionalProperties: false`), and every id in a
    /// path is a UUID: so a new route cannot leave either out of the document.
    #[test]
    fn every_request_body_refuses_unknown_fields_and_every_path_id_is_a_uuid() {
        let doc = doc();
        let mut loose = vec![];
        let mut bodies = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                // A webhook delivery is the CI's payload (GitHub's push event among them), whose fields are the sender's.
                let foreign = path == "/hooks/v1/{webhook_id}";
                if let Some(media) = op["requestBody"]["content"]["application/json"].as_object().filter(|_| !foreign) {
                    bodies += 1;
                    let schema = resolve(&doc, &media["schema"]);
                    if schema["additionalProperties"] != Value::Bool(false) {
                        loose.push(format!("{method} {path}: body {schema}"));
                    }
                }
                for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
                    let name = p["name"].as_str().unwrap_or_default();
                    let expected = match name {
                        "revision" => (p["schema"]["type"] == "integer" && p["schema"]["minimum"] == 1, "an integer from 1"),
                        // A delivery id is the sender's (`Berth-Delivery`), not Berth's.
                        "delivery_id" => (p["schema"]["type"] == "string", "a string"),
                        _ => (p["schema"]["format"] == "uuid", "a UUID"),
                    };
                    if !expected.0 {
                        loose.push(format!("{method} {path}: {name} is not {}: {}", expected.1, p["schema"]));
                    }
                }
            }
        }
        assert!(bodies >= 20, "the document has its request bodies ({bodies})");
        assert!(loose.is_empty(), "{loose:#?}");
    }

    /// The enums of the request bodies are spelt by hand (`schema_with`): each
    /// value must be one the domain type reads, and the lists whole.
    #[test]
    fn every_enum_of_a_request_body_lists_exactly_the_values_the_server_reads() {
        use berth_domain::{change_request::ChangeType, component::ComponentType, policy::Decision, runtime::RuntimeKind, values::*, webhook::WebhookAction};
        fn reads<T: serde::de::DeserializeOwned>(v: &Value) -> bool {
            serde_json::from_value::<T>(v.clone()).is_ok()
        }
        let doc = doc();
        let enum_of = |schema: &str, property: &str| -> Vec<Value> {
            let p = &doc["components"]["schemas"][schema]["properties"][property];
            let values = p["enum"].as_array().or(p["items"]["enum"].as_array()).cloned().unwrap_or_else(|| panic!("{schema}.{property} has an enum: {p}"));
            values.into_iter().filter(|v| !v.is_null()).collect()
        };
        let cases: [(&str, &str, fn(&Value) -> bool, usize); 9] = [
            ("CreateEnvironment", "classification", reads::<Classification>, 2),
            ("CreateRuntime", "kind", reads::<RuntimeKind>, 2),
            ("CreateComponent", "type", reads::<ComponentType>, 13),
            ("CreateApproval", "decision", reads::<Decision>, 2),
            ("CreateChangeRequest", "change_type", reads::<ChangeType>, 3),
            ("PatchChangeRequest", "change_type", reads::<ChangeType>, 3),
            ("CreateWebhook", "action", reads::<WebhookAction>, 2),
            ("PatchWebhook", "action", reads::<WebhookAction>, 2),
            ("CreateApiKey", "roles", reads::<Role>, 5),
        ];
        for (schema, property, read, count) in cases {
            let values = enum_of(schema, property);
            assert_eq!(values.len(), count, "{schema}.{property}: {values:?}");
            assert!(values.iter().all(read), "{schema}.{property}: {values:?}");
        }
        assert!(!reads::<ComponentType>(&serde_json::json!("widget")), "an unlisted value is refused");
    }

    #[test]
    fn a_list_limit_is_documented_as_the_server_checks_it() {
        let doc = doc();
        let limit = doc["paths"]["/v1/environments"]["get"]["parameters"].as_array().expect("parameters").iter().find(|p| p["name"] == "limit").cloned();
        let limit = limit.expect("limit is declared");
        assert_eq!((limit["schema"]["minimum"].clone(), limit["schema"]["maximum"].clone()), (serde_json::json!(1), serde_json::json!(100)));
        assert!(berth_domain::page::PageRequest::new(Some(100), None).is_ok() && berth_domain::page::PageRequest::new(Some(101), None).is_err());
    }

    #[test]
    fn the_deployment_statuses_of_the_list_filter_are_the_domain_s() {
        let doc = doc();
        let status = doc["paths"]["/v1/deployments"]["get"]["parameters"].as_array().expect("parameters").iter().find(|p| p["name"] == "status").cloned();
        let values = status.expect("status is declared")["schema"]["enum"].as_array().cloned().expect("an enum");
        assert_eq!(values.len(), 12);
        for v in values {
            assert!(berth_domain::deployment::DeploymentStatus::parse(v.as_str().unwrap_or_default()).is_some(), "{v}");
        }
    }

    #[test]
    fn a_body_that_may_be_left_out_is_not_required_and_not_null() {
        let doc = doc();
        let body = &doc["paths"]["/v1/runtimes/{id}/registration-token"]["post"]["requestBody"];
        assert_eq!(body["required"], Value::Bool(false), "{body}");
        assert_eq!(body["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/IssueRegistrationToken");
    }

    /// The attack matrix (tests/attack) sends these examples; without one it cannot call the route.
    #[test]
    fn every_request_body_in_the_document_carries_an_example() {
        let doc = doc();
        let mut missing = vec![];
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let Some(media) = op["requestBody"]["content"]["application/json"].as_object() else { continue };
                let schema = resolve(&doc, &media["schema"]);
                if media.get("example").is_none() && schema.get("example").is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(missing.is_empty(), "request bodies without an example (add #[schema(example = json!(...))] to their type): {missing:?}");
    }
}
