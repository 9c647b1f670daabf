//! Every move of the change request state machine, as a table: one row per
//! (status, step). A status added to `ALL`, or a step added to `steps()`,
//! without its rows fails `..._as_the_table_says`.

use super::*;
use ChangeStatus::*;
use ChangeStep::*;

fn change_request(status: ChangeStatus) -> ChangeRequest {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    ChangeRequest {
        id: ChangeRequestId::new(),
        name: Name::parse("Release 12").unwrap(),
        overview: String::new(),
        change_type: ChangeType::Normal,
        status,
        target_environment_id: EnvironmentId::new(),
        items: vec![PackageId::new()],
        digests: vec![Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap()],
        links: vec![],
        required_approvals: 1,
        deployments: vec![],
        created_by: "alice".into(),
        item_editors: vec![],
        created_at: at,
        updated_at: at,
        version: Version::FIRST,
    }
}

/// Each step once (a submit both with and without approvals to wait for).
fn steps() -> Vec<ChangeStep> {
    let steps = vec![Submit { required_approvals: 0 }, Submit { required_approvals: 2 }, Approve, Reject, Edit, NewDigests, StartDeploying, Complete, Fail];
    for step in &steps {
        // A new step fails to compile here: list it above and give it its rows.
        match step {
            Submit { .. } | Approve | Reject | Edit | NewDigests | StartDeploying | Complete | Fail => {}
        }
    }
    steps
}

#[derive(Clone, Copy, Debug)]
enum Then {
    To(ChangeStatus),
    /// 409 `not_draft`.
    NotDraft,
    /// 409 `not_submitted`.
    NotSubmitted,
    /// 409 `change_request_locked`.
    Locked,
    /// 409 `not_approved`.
    NotApproved,
    /// 409 `not_deploying`.
    NotDeploying,
}
use Then::*;

#[rustfmt::skip]
fn table() -> Vec<(ChangeStatus, ChangeStep, Then)> {
    vec![
        (Draft, Submit { required_approvals: 0 }, To(Approved)),
        (Draft, Submit { required_approvals: 2 }, To(Submitted)),
        (Draft, Approve, NotSubmitted),
        (Draft, Reject, NotSubmitted),
        (Draft, Edit, To(Draft)),
        (Draft, NewDigests, To(Draft)),
        (Draft, StartDeploying, NotApproved),
        (Draft, Complete, NotDeploying),
        (Draft, Fail, NotDeploying),
        (Submitted, Submit { required_approvals: 0 }, NotDraft),
        (Submitted, Submit { required_approvals: 2 }, NotDraft),
        (Submitted, Approve, To(Approved)),
        (Submitted, Reject, To(Rejected)),
        (Submitted, Edit, To(Submitted)),
        (Submitted, NewDigests, To(Submitted)),
        (Submitted, StartDeploying, NotApproved),
        (Submitted, Complete, NotDeploying),
        (Submitted, Fail, NotDeploying),
        (Approved, Submit { required_approvals: 0 }, NotDraft),
        (Approved, Submit { required_approvals: 2 }, NotDraft),
        (Approved, Approve, NotSubmitted),
        (Approved, Reject, NotSubmitted),
        (Approved, Edit, To(Approved)),
        (Approved, NewDigests, To(Submitted)),
        (Approved, StartDeploying, To(Deploying)),
        (Approved, Complete, NotDeploying),
        (Approved, Fail, NotDeploying),
        (Rejected, Submit { required_approvals: 0 }, NotDraft),
        (Rejected, Submit { required_approvals: 2 }, NotDraft),
        (Rejected, Approve, NotSubmitted),
        (Rejected, Reject, NotSubmitted),
        (Rejected, Edit, Locked),
        (Rejected, NewDigests, Locked),
        (Rejected, StartDeploying, NotApproved),
        (Rejected, Complete, NotDeploying),
        (Rejected, Fail, NotDeploying),
        (Deploying, Submit { required_approvals: 0 }, NotDraft),
        (Deploying, Submit { required_approvals: 2 }, NotDraft),
        (Deploying, Approve, NotSubmitted),
        (Deploying, Reject, NotSubmitted),
        (Deploying, Edit, Locked),
        (Deploying, NewDigests, Locked),
        (Deploying, StartDeploying, NotApproved),
        (Deploying, Complete, To(Completed)),
        (Deploying, Fail, To(Failed)),
        (Completed, Submit { required_approvals: 0 }, NotDraft),
        (Completed, Submit { required_approvals: 2 }, NotDraft),
        (Completed, Approve, NotSubmitted),
        (Completed, Reject, NotSubmitted),
        (Completed, Edit, Locked),
        (Completed, NewDigests, Locked),
        (Completed, StartDeploying, NotApproved),
        (Completed, Complete, NotDeploying),
        (Completed, Fail, NotDeploying),
        (Failed, Submit { required_approvals: 0 }, NotDraft),
        (Failed, Submit { required_approvals: 2 }, NotDraft),
        (Failed, Approve, NotSubmitted),
        (Failed, Reject, NotSubmitted),
        (Failed, Edit, Locked),
        (Failed, NewDigests, Locked),
        (Failed, StartDeploying, NotApproved),
        (Failed, Complete, NotDeploying),
        (Failed, Fail, NotDeploying),
    ]
}

#[test]
fn every_status_answers_every_step_as_the_table_says() {
    let table = table();
    for from in ChangeStatus::ALL {
        for step in steps() {
            let rows = table.iter().filter(|(s, e, _)| *s == from && *e == step).count();
            assert_eq!(rows, 1, "{from:?} + {step:?} needs exactly one row");
        }
    }
    assert_eq!(table.len(), ChangeStatus::ALL.len() * steps().len(), "a row for a step not in steps()");
    for (from, step, then) in table {
        let want = match then {
            To(status) => Ok(status),
            NotDraft => Err(ChangeRefused::NotDraft(from)),
            NotSubmitted => Err(ChangeRefused::NotSubmitted(from)),
            Locked => Err(ChangeRefused::Locked(from)),
            NotApproved => Err(ChangeRefused::NotApproved(from)),
            NotDeploying => Err(ChangeRefused::NotDeploying(from)),
        };
        assert_eq!(change_request(from).step(step).map(|cr| cr.status), want, "{from:?} + {step:?}");
    }
}

#[test]
fn a_submitted_change_request_waits_for_the_approvals_its_policy_requires_now() {
    let submitted = change_request(Draft).step(Submit { required_approvals: 3 }).unwrap();
    assert_eq!((submitted.status, submitted.required_approvals), (Submitted, 3));
    let approved = change_request(Draft).step(Submit { required_approvals: 0 }).unwrap();
    assert_eq!((approved.status, approved.required_approvals), (Approved, 0));
}

#[test]
fn refusals_keep_the_api_codes_and_messages() {
    let cases = [
        (Approved, Submit { required_approvals: 0 }, "not_draft", "only a draft can be submitted; this one is approved"),
        (Draft, Approve, "not_submitted", "the change request is draft, not waiting for approvals"),
        (Deploying, Edit, "change_request_locked", "a change request that is deploying cannot change"),
        (Submitted, StartDeploying, "not_approved", "the change request is submitted, not approved"),
        (Approved, Complete, "not_deploying", "the change request is approved: it has no deployments to complete"),
    ];
    for (from, step, want_code, want_message) in cases {
        let refused = crate::DomainError::from(change_request(from).step(step).unwrap_err());
        let crate::DomainError::Conflict { code, message } = refused else { panic!("{from:?} + {step:?}: not a conflict") };
        assert_eq!((code, message.as_str()), (want_code, want_message));
    }
}

#[test]
fn a_step_changes_the_status_and_nothing_else() {
    let before = change_request(Approved);
    let after = before.step(NewDigests).unwrap();
    assert_eq!(ChangeRequest { status: before.status, ..after.clone() }, before, "version and updated_at are the store's to bump");
}
