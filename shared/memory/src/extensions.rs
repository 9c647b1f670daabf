use crate::MemoryStore;
use async_trait::async_trait;
use base64::Engine;
use berth_domain::audit::AuditDraft;
use berth_domain::extension::{ConnectionTest, ConnectionTestStatus, EnvironmentExtensions, SecretScope};
use berth_domain::ids::{ComponentId, EnvironmentId, RuntimeId, TenantId};
use berth_domain::ports::{ExtensionSealer, ExtensionStore};
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::secret::Sensitive;
use berth_domain::webhook::SealedSecret;
use berth_domain::{DomainError, Result};

#[async_trait]
impl ExtensionStore for MemoryStore {
    async fn get_extensions(&self, tenant: TenantId, env: EnvironmentId) -> Result<EnvironmentExtensions> {
        Ok(self.lock().t(tenant).extensions.get(&env).cloned().unwrap_or_default())
    }

    async fn put_extensions(&self, tenant: TenantId, env: EnvironmentId, after: &EnvironmentExtensions, expected: u64, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if t.extensions.get(&env).map_or(0, |e| e.version) != expected {
            return Err(Refusal::Stale(Entity::Extensions).into());
        }
        t.extensions.insert(env, after.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn put_connection_test(&self, tenant: TenantId, test: &ConnectionTest) -> Result<()> {
        self.lock().t(tenant).connection_tests.insert((test.environment_id, test.component_id), test.clone());
        Ok(())
    }

    async fn finish_connection_test(&self, tenant: TenantId, test: &ConnectionTest) -> Result<()> {
        let mut s = self.lock();
        let stored = s.t(tenant).connection_tests.get_mut(&(test.environment_id, test.component_id));
        match stored {
            Some(now) if now.id == test.id && now.status == ConnectionTestStatus::Pending => {
                *now = test.clone();
                Ok(())
            }
            _ => Err(Refusal::Stale(Entity::Extensions).into()),
        }
    }

    async fn get_connection_test(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<ConnectionTest>> {
        Ok(self.lock().t(tenant).connection_tests.get(&(env, component)).cloned())
    }

    async fn pending_connection_tests(&self, tenant: TenantId, runtime: RuntimeId) -> Result<Vec<ConnectionTest>> {
        let mut s = self.lock();
        let tests = s.t(tenant).connection_tests.values();
        Ok(tests.filter(|t| t.runtime_id == runtime && t.status == ConnectionTestStatus::Pending).cloned().collect())
    }
}

/// The memory store's sealing of extension secrets: reversible, not the clear
/// text, and bound to the whole scope (written into the sealed form and
/// checked on opening). It keeps nothing secret: test use only; AWS seals with KMS.
const SEALED_PREFIX: &str = "memory-sealed-extension";

fn scope_key(scope: &SecretScope) -> String {
    format!("{}/{}/{}/{}", scope.tenant, scope.environment, scope.component, scope.field)
}

fn mask(bytes: &[u8], scope: &SecretScope) -> Vec<u8> {
    let key = scope_key(scope);
    bytes.iter().zip(key.bytes().map(|b| b ^ 0x5A).cycle()).map(|(b, k)| b ^ k).collect()
}

#[async_trait]
impl ExtensionSealer for MemoryStore {
    async fn seal_extension(&self, scope: &SecretScope, value: &Sensitive) -> Result<SealedSecret> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Ok(SealedSecret(format!("{SEALED_PREFIX}:{}:{}", b64.encode(scope_key(scope)), b64.encode(mask(value.reveal().as_bytes(), scope)))))
    }

    async fn open_extension(&self, scope: &SecretScope, sealed: &SealedSecret) -> Result<Sensitive> {
        let unreadable = || DomainError::unexpected("a sealed extension value does not open for this scope");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = sealed.0.splitn(3, ':');
        let (Some(SEALED_PREFIX), Some(bound), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(unreadable());
        };
        if b64.decode(bound).ok().as_deref() != Some(scope_key(scope).as_bytes()) {
            return Err(unreadable());
        }
        let clear = mask(&b64.decode(body).map_err(|_| unreadable())?, scope);
        String::from_utf8(clear).map(Sensitive::new).map_err(|_| unreadable())
    }
}
