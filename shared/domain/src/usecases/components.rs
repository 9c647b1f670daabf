use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{ComponentCreated, ComponentRevised};
use crate::component::{Component, ComponentType, ContentRef, MAX_CONTENT_BYTES, MAX_REFERENCES, Revision, dedup_references};
use crate::context::{Permission, TenantCtx};
use crate::error::FieldError;
use crate::extension::ExtensionPoints;
use crate::ids::ComponentId;
use crate::package::closes_cycle;
use crate::page::{Page, PageRequest};
use crate::values::{Name, Version};
use crate::{DomainError, Result};
use chrono::Utc;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct NewComponent {
    pub name: Name,
    pub kind: ComponentType,
    pub content: Vec<u8>,
    pub references: Vec<ComponentId>,
    /// What the first revision lets each environment set.
    pub extensions: ExtensionPoints,
}

/// A new revision: what is absent stays as it was.
#[derive(Clone, Debug, Default)]
pub struct RevisionInput {
    pub content: Option<Vec<u8>>,
    pub references: Option<Vec<ComponentId>>,
    /// The extension points it declares (absent: those of the revision before).
    pub extensions: Option<ExtensionPoints>,
}

fn check_content(content: &[u8]) -> Result<()> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(DomainError::TooLarge { message: format!("content must be at most {MAX_CONTENT_BYTES} bytes once decoded") });
    }
    Ok(())
}

impl Berth {
    /// Every reference must name a component of this tenant.
    async fn check_references(&self, ctx: &TenantCtx, references: &[ComponentId]) -> Result<()> {
        if references.len() > MAX_REFERENCES {
            return Err(DomainError::invalid("references", format!("at most {MAX_REFERENCES} references")));
        }
        let found: HashSet<ComponentId> = self.ports.components.get_components(ctx.tenant, references).await?.into_iter().map(|c| c.id).collect();
        let errors: Vec<FieldError> = references
            .iter()
            .enumerate()
            .filter(|(_, r)| !found.contains(r))
            .map(|(i, r)| FieldError::new(format!("references[{i}]"), format!("no component {r}")))
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(DomainError::Validation { code: "reference_not_found", errors }) }
    }

    /// The current references of everything reachable from `start`.
    pub(crate) async fn reference_graph(&self, ctx: &TenantCtx, start: &[ComponentId]) -> Result<HashMap<ComponentId, Component>> {
        let mut loaded: HashMap<ComponentId, Component> = HashMap::new();
        let mut frontier: Vec<ComponentId> = start.to_vec();
        while !frontier.is_empty() {
            let batch: Vec<ComponentId> = frontier.drain(..).filter(|id| !loaded.contains_key(id)).collect::<HashSet<_>>().into_iter().collect();
            if batch.is_empty() {
                break;
            }
            for c in self.ports.components.get_components(ctx.tenant, &batch).await? {
                frontier.extend(c.references.iter().copied());
                loaded.insert(c.id, c);
            }
        }
        Ok(loaded)
    }

    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_component(&self, ctx: &TenantCtx, input: NewComponent) -> Result<Component> {
        ctx.require(Permission::BuildComponents)?;
        check_content(&input.content)?;
        input.extensions.check()?;
        let references = dedup_references(input.references);
        self.check_references(ctx, &references).await?;
        let content = self.ports.blobs.put_content(ctx.tenant, input.content).await?;
        let (component, first) = Component::declaring(Component::new(input.name, input.kind, references, content, &ctx.actor.id, Utc::now()), input.extensions);
        let audit = AuditDraft::by(ctx, component.id, ComponentCreated::of(&component));
        self.ports.components.create_component(ctx.tenant, &component, &first, audit).await?;
        Ok(component)
    }

    pub async fn get_component(&self, ctx: &TenantCtx, id: ComponentId) -> Result<Component> {
        ctx.require(Permission::Read)?;
        self.ports.components.get_component(ctx.tenant, id).await?.ok_or(DomainError::not_found("component"))
    }

    pub async fn list_components(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<Component>> {
        ctx.require(Permission::Read)?;
        self.ports.components.list_components(ctx.tenant, page).await
    }

    /// Adds the next revision. References must exist and must not close a cycle.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn revise_component(&self, ctx: &TenantCtx, id: ComponentId, input: RevisionInput, if_match: Option<Version>) -> Result<(Component, Revision)> {
        self.revise_with(ctx, id, input, None, if_match).await
    }

    /// `revise_component`, with content stored already (a completed upload) when `stored` is given.
    pub(crate) async fn revise_with(
        &self,
        ctx: &TenantCtx,
        id: ComponentId,
        input: RevisionInput,
        stored: Option<ContentRef>,
        if_match: Option<Version>,
    ) -> Result<(Component, Revision)> {
        let before = self.get_component(ctx, id).await?;
        ctx.require(Permission::BuildComponents)?;
        if if_match.is_some_and(|v| v.0 != u64::from(before.revision)) {
            return Err(DomainError::PreconditionFailed);
        }
        if let Some(c) = &input.content {
            check_content(c)?;
        }
        if let Some(points) = &input.extensions {
            points.check()?;
        }
        let references = dedup_references(input.references.unwrap_or_else(|| before.references.clone()));
        self.check_references(ctx, &references).await?;
        let graph: HashMap<ComponentId, Vec<ComponentId>> = self.reference_graph(ctx, &references).await?.into_iter().map(|(k, c)| (k, c.references)).collect();
        if closes_cycle(id, &references, &graph) {
            return Err(DomainError::Validation {
                code: "reference_cycle",
                errors: vec![FieldError::new("references", "would make the component reference itself, directly or through others")],
            });
        }
        let content = match (stored, input.content) {
            (Some(stored), _) => stored,
            (None, Some(bytes)) => self.ports.blobs.put_content(ctx.tenant, bytes).await?,
            (None, None) => before.content.clone(),
        };
        let revised = before.revised(references, content, &ctx.actor.id, Utc::now());
        let (after, revision) = match input.extensions {
            Some(points) => Component::declaring(revised, points),
            None => revised,
        };
        let audit = AuditDraft::by(ctx, id, ComponentRevised::of(&before, &after));
        self.ports.components.add_revision(ctx.tenant, &after, &revision, audit).await?;
        Ok((after, revision))
    }

    pub async fn get_revision(&self, ctx: &TenantCtx, id: ComponentId, revision: u32) -> Result<Revision> {
        self.get_component(ctx, id).await?;
        self.ports.components.get_revision(ctx.tenant, id, revision).await?.ok_or(DomainError::not_found("revision"))
    }

    pub async fn list_revisions(&self, ctx: &TenantCtx, id: ComponentId, page: &PageRequest) -> Result<Page<Revision>> {
        self.get_component(ctx, id).await?;
        self.ports.components.list_revisions(ctx.tenant, id, page).await
    }
}
