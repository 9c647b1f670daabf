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

/// Moves the client's `X-Request-Id` aside, so the server mints its own.
async fn keep_client_request_id<B>(mut req: Request<B>) -> Request<B> {
    if let Some(client) = req.headers_mut().remove(REQUEST_ID_HEADER) {
        let usable = client.to_str().map(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())).unwrap_or(false);
        if usable {
            req.headers_mut().insert(CLIENT_REQUEST_ID_HEADER, client);
        }
    }
    req
}
