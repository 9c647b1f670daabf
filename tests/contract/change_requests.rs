use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::change_request::{ChangeRequest, ChangeStatus, ChangeType};
use berth_domain::ids::{ChangeRequestId, EnvironmentId, PackageId, TenantId};
use berth_domain::policy::Decision;
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::values::{Plan, Version};
use chrono::{Duration, Utc};

fn change_request(items: usize) -> ChangeRequest {
    let now = Utc::now();
    ChangeRequest {
        id: ChangeRequestId::new(),
        name: name("CHG-1"),
        overview: String::new(),
        change_type: ChangeType::Normal,
        status: ChangeStatus::Draft,
        target_environment_id: EnvironmentId::new(),
        items: (0..items).map(|_| PackageId::new()).collect(),
        digests: (0..items).map(|i| digest(char::from(b'a' + i as u8))).collect(),
        links: vec![],
        required_approvals: 2,
        deployments: vec![],
        created_by: "alice".into(),
        item_editors: vec![],
        created_at: now,
        updated_at: now,
        version: Version::FIRST,
    }
}

impl Stores {
    async fn save(&self, tenant: TenantId, before: &ChangeRequest, edit: impl FnOnce(&mut ChangeRequest)) -> berth_domain::Result<ChangeRequest> {
        let mut after = before.clone();
        edit(&mut after);
        after.version = before.version.next();
        self.change_requests
            .update_change_request(tenant, &after, before.version, draft("change_request.updated", "change_request", after.id))
            .await
            .map(|()| after)
    }
}

pub async fn a_change_request_is_created_once_and_updated_only_from_the_version_read(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let v1 = change_request(1);
    s.change_requests.create_change_request(acme, &v1, draft("change_request.created", "change_request", v1.id)).await.expect("created");
    assert_eq!(s.change_requests.get_change_request(acme, v1.id).await.expect("read"), Some(v1.clone()));
    let same_id = ChangeRequest { name: name("CHG-2"), ..v1.clone() };
    let refusal = refused(s.change_requests.create_change_request(acme, &same_id, draft("change_request.created", "change_request", v1.id)).await);
    assert_eq!(refusal, Refusal::Exists(Entity::ChangeRequest));

    let v2 = s.save(acme, &v1, |cr| cr.overview = "release notes".into()).await.expect("updated from the version read");
    assert_eq!(refused(s.save(acme, &v1, |cr| cr.overview = "stale".into()).await), Refusal::Stale(Entity::ChangeRequest));
    assert_eq!(s.change_requests.get_change_request(acme, v1.id).await.expect("read"), Some(v2), "the stale update changed nothing");
    assert_eq!(refused(s.save(acme, &change_request(1), |_| {}).await), Refusal::Stale(Entity::ChangeRequest), "a missing change request");
    assert_eq!(s.actions(acme).await, ["tenant.created", "change_request.created", "change_request.updated"]);
}

pub async fn change_requests_are_listed_newest_first(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let mut ids = vec![];
    for _ in 0..5 {
        let cr = change_request(1);
        s.change_requests.create_change_request(acme, &cr, draft("change_request.created", "change_request", cr.id)).await.expect("created");
        ids.push(cr.id);
    }
    ids.sort_by(|a, b| b.cmp(a));
    let listed = pages(2, async |page| s.change_requests.list_change_requests(acme, &page).await).await;
    assert_eq!(listed.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(listed.concat().iter().map(|cr| cr.id).collect::<Vec<_>>(), ids);
}

pub async fn a_change_request_takes_one_decision_per_approver_and_set_of_digests_while_submitted(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let draft_cr = change_request(2);
    s.change_requests.create_change_request(acme, &draft_cr, draft("change_request.created", "change_request", draft_cr.id)).await.expect("created");
    let decide = async |who: &str, digests: &[berth_domain::runtime::Digest], minutes_ago: i64| {
        let mut a = approval(who, Decision::Approve, digests);
        a.created_at = Utc::now() - Duration::minutes(minutes_ago);
        s.change_requests.add_change_approval(acme, draft_cr.id, &a, draft("change_request.approved", "change_request", draft_cr.id)).await
    };
    assert_eq!(refused(decide("bob", &draft_cr.digests, 0).await), Refusal::NotAwaitingApproval(Decided::ChangeRequest), "a draft waits for nothing");

    let submitted = s.save(acme, &draft_cr, |cr| cr.status = ChangeStatus::Submitted).await.expect("submitted");
    decide("bob", &submitted.digests, 1).await.expect("bob decides");
    assert_eq!(refused(decide("bob", &submitted.digests, 0).await), Refusal::AlreadyDecided(Decided::ChangeRequest));
    let new_items = [digest('e'), digest('f')];
    decide("bob", &new_items, 0).await.expect("bob decides anew on other digests");
    decide("carol", &submitted.digests, 5).await.expect("carol decides");

    let now = s.change_requests.get_change_request(acme, draft_cr.id).await.expect("read").expect("there");
    assert_eq!(now.version, Version(submitted.version.0 + 3), "each decision bumps the version");
    assert_eq!(
        refused(s.save(acme, &submitted, |cr| cr.status = ChangeStatus::Approved).await),
        Refusal::Stale(Entity::ChangeRequest),
        "a decision arrived since"
    );
    let approvals = s.change_requests.change_approvals(acme, draft_cr.id).await.expect("read");
    let by: Vec<(&str, bool)> = approvals.iter().map(|a| (a.approver.as_str(), a.digests == submitted.digests)).collect();
    assert_eq!(by, [("carol", true), ("bob", true), ("bob", false)], "oldest decision first");
    s.save(acme, &now, |cr| cr.status = ChangeStatus::Approved).await.expect("approved from the version read");
    assert_eq!(refused(decide("dave", &submitted.digests, 0).await), Refusal::NotAwaitingApproval(Decided::ChangeRequest), "approved: no longer waiting");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "change_request.approved").count(), 3);
}
