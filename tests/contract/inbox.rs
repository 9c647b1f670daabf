use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::change_request::{ChangeRequest, ChangeStatus, ChangeType};
use berth_domain::deployment::DeploymentStatus;
use berth_domain::ids::{ChangeRequestId, ComponentId, EnvironmentId, PackageId};
use berth_domain::ports::AwaitingDecision;
use berth_domain::values::{Plan, Version};
use chrono::{Duration, Utc};

fn submitted_change_request(created_at: chrono::DateTime<Utc>) -> ChangeRequest {
    ChangeRequest {
        id: ChangeRequestId::new(),
        name: name("CHG-1"),
        overview: String::new(),
        change_type: ChangeType::Normal,
        status: ChangeStatus::Submitted,
        target_environment_id: EnvironmentId::new(),
        items: vec![PackageId::new()],
        digests: vec![digest('a')],
        links: vec![],
        required_approvals: 1,
        deployments: vec![],
        created_by: "alice".into(),
        item_editors: vec![],
        created_at,
        updated_at: created_at,
        version: Version::FIRST,
    }
}

pub async fn what_awaits_a_decision_is_listed_oldest_first_across_deployments_and_change_requests_until_it_moves_on(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = EnvironmentId::new();
    let now = Utc::now();
    let pending = |minutes_ago: i64| {
        let mut d = deployment(env, &package(ComponentId::new(), "1", &[]));
        d.status = DeploymentStatus::PendingApproval;
        d.required_approvals = 1;
        d.created_at = now - Duration::minutes(minutes_ago);
        d
    };
    let (oldest, newest) = (pending(30), pending(10));
    let change = submitted_change_request(now - Duration::minutes(20));
    let queued = deployment(env, &package(ComponentId::new(), "1", &[]));
    for d in [&newest, &oldest, &queued] {
        s.create_deployment(acme, d).await.expect("created");
    }
    s.change_requests.create_change_request(acme, &change, draft("change_request.created", "change_request", change.id)).await.expect("created");
    let draft_change = ChangeRequest { status: ChangeStatus::Draft, ..submitted_change_request(now) };
    s.change_requests.create_change_request(acme, &draft_change, draft("change_request.created", "change_request", draft_change.id)).await.expect("created");

    let expected = [AwaitingDecision::Deployment(oldest.id), AwaitingDecision::ChangeRequest(change.id), AwaitingDecision::Deployment(newest.id)];
    assert_eq!(all(2, async |page| s.inbox.awaiting_decision(acme, &page).await).await, expected, "queued and draft ones wait on no one");
    let globex = s.tenant(Plan::default()).await;
    assert!(all(2, async |page| s.inbox.awaiting_decision(globex, &page).await).await.is_empty(), "per tenant");

    // Approved and changed: neither waits any longer.
    s.transition(acme, &oldest, DeploymentStatus::Queued).await;
    let mut approved = change.clone();
    approved.status = ChangeStatus::Approved;
    approved.version = change.version.next();
    s.change_requests
        .update_change_request(acme, &approved, change.version, draft("change_request.updated", "change_request", change.id))
        .await
        .expect("updated");
    assert_eq!(all(2, async |page| s.inbox.awaiting_decision(acme, &page).await).await, [AwaitingDecision::Deployment(newest.id)]);
}
