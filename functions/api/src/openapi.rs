//! The OpenAPI document, generated from the handlers' annotations.

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
        create_component, list_components, get_component, create_revision, list_revisions, get_revision,
        create_package, list_packages, get_package, download_package, delete_package,
        validate_deployment, create_deployment, list_deployments, get_deployment, list_targets, list_events, cancel_deployment, retry_deployment,
        active_versions, undeploy, roll_back, lift_quarantine, decide, get_policy, put_policy, get_extensions, put_extensions,
        change_requests::create, change_requests::list, change_requests::get, change_requests::patch, change_requests::submit,
        change_requests::decide, change_requests::deploy, change_requests::complete, change_requests::validate, change_requests::scan,
        approvals::pending, usage::usage,
        list_audit, verify_audit,
        create_webhook, list_webhooks, get_webhook, patch_webhook, delete_webhook, rotate_secret, list_deliveries,
        create_api_key, list_api_keys, get_api_key, revoke_api_key,
    ),
    components(schemas(crate::views::ProblemView, crate::views::FieldErrorView, MeView, TenantView, PlanView, PlanInput, CreateTenant, PatchTenant, EnvironmentView, CreateEnvironment, PatchEnvironment, RuntimeView, CreateRuntime, IssueRegistrationToken,
        ComponentView, RevisionView, CreateComponent, CreateRevision, CreatePackage, PackageView, DownloadView,
        DeploymentView, CreateDeployment, ValidationView, IssueView, TargetView, EventView, ActiveVersionView,
        ApprovalView, CreateApproval, PolicyBody, ExtensionPointsBody, ConnectionFieldBody, PropertyBody, LookupBody, PutExtensions, ExtensionsBody, ChangeRequestView, ChangeItemView, CreateChangeRequest, PatchChangeRequest, ChangeItemInput, RollbackRequest, DeployChangeRequest,
        WebhookView, WebhookWithSecretView, CreateWebhook, PatchWebhook, RotateSecret, DeliveryView,
        ActiveVersionsView, QuarantinedVersionView,
        ChangeValidationView, ItemValidationView, ChangeScanView, ItemScanView, RevisedComponentView,
        PendingDecisionView, UsageView, AllowanceView, LicenceUseView, LicensedConnectionView,
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
    declare_problem_responses(&mut doc);
    doc
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
