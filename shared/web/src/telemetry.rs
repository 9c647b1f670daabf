//! The per-request span (with `request_id` and, once the caller is known,
//! `tenant_id`). Tracing set-up itself is `berth-telemetry`'s.

use crate::extract::{CLIENT_REQUEST_ID_HEADER, REQUEST_ID_HEADER};
use axum::http::{HeaderName, Request};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Adds request ids, the request span and access logging to a router. The
/// request id is always the server's own: a client's `X-Request-Id` is kept
/// as `X-Client-Request-Id` (recorded beside it, never trusted as ours).
pub fn layer_router<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %request_id, tenant_id = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .layer(axum::middleware::map_request(keep_client_request_id))
}

/// The id the platform gave a request (API Gateway's `requestContext.requestId`
/// in Lambda), set as a request extension by [`with_gateway_request_id`]: it is
/// then the request id of the logs, the audit and `X-Request-Id`, so one id
/// finds a request in API Gateway's access log and in the function's log.
#[derive(Clone, Debug)]
pub struct GatewayRequestId(pub String);

/// Marks each request with the id `id_of` reads from it (see [`GatewayRequestId`]).
/// Outermost layer: wrap what `finish_router` returned.
pub fn with_gateway_request_id(router: axum::Router, id_of: fn(&Request<axum::body::Body>) -> Option<String>) -> axum::Router {
    router.layer(axum::middleware::map_request(move |mut req: Request<axum::body::Body>| async move {
        if let Some(id) = id_of(&req) {
            req.extensions_mut().insert(GatewayRequestId(id));
        }
        req
    }))
}

/// Moves the client's `X-Request-Id` aside, so the server mints its own (or
/// takes the platform's, [`GatewayRequestId`]).
async fn keep_client_request_id<B>(mut req: Request<B>) -> Request<B> {
    if let Some(client) = req.headers_mut().remove(REQUEST_ID_HEADER) {
        let usable = client.to_str().map(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())).unwrap_or(false);
        if usable {
            req.headers_mut().insert(CLIENT_REQUEST_ID_HEADER, client);
        }
    }
    let gateway = req.extensions().get::<GatewayRequestId>().and_then(|GatewayRequestId(id)| axum::http::HeaderValue::from_str(id).ok());
    if let Some(id) = gateway {
        req.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{client_request_id_of, request_id_of};
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn ids(parts: axum::http::request::Parts) -> String {
        format!("{} {}", request_id_of(&parts), client_request_id_of(&parts).unwrap_or_default())
    }

    fn app() -> axum::Router {
        layer_router(axum::Router::new().route("/", get(|req: Request<Body>| ids(req.into_parts().0))))
    }

    async fn call(router: axum::Router, client_id: &str) -> (String, String) {
        let req = Request::get("/").header(REQUEST_ID_HEADER, client_id).body(Body::empty()).expect("a request");
        let response = router.oneshot(req).await.expect("an answer");
        let header = response.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("a body");
        (header, String::from_utf8_lossy(&body).to_string())
    }

    #[tokio::test]
    async fn in_lambda_the_request_id_is_api_gateways_and_the_clients_is_kept_beside_it() {
        let router = with_gateway_request_id(app(), |_| Some("K3xYz1abcdEFg=".to_string()));
        let (header, seen) = call(router, "client-1").await;
        assert_eq!(header, "K3xYz1abcdEFg=");
        assert_eq!(seen, "K3xYz1abcdEFg= client-1", "the handler (and so the audit) sees the gateway's id");
    }

    #[tokio::test]
    async fn without_a_gateway_id_the_server_mints_its_own() {
        let (header, seen) = call(app(), "client-1").await;
        assert_ne!(header, "client-1");
        assert!(uuid::Uuid::parse_str(&header).is_ok(), "{header}");
        assert_eq!(seen, format!("{header} client-1"));
    }
}
