//! Tenant isolation across every endpoint.
