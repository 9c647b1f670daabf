//! Every move of the deployment and target state machines, as a table: one
//! row per (state, step). A state added to `ALL`, or a step added to
//! `steps()`, without its rows fails `..._as_the_table_says`.

use super::*;
use crate::component::ComponentType;
use crate::ids::ChangeRequestId;
use crate::package::{Manifest, ManifestEntry};
use chrono::TimeDelta;

/// A fixed "now", so that every row reads the same clock.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn package(component: ComponentId) -> Package {
    let connection = ComponentId::new();
    Package {
        id: PackageId::new(),
        component_id: component,
        version: VersionLabel::number(2),
        notes: String::new(),
        shareable: false,
        deleted: false,
        status: crate::package::PackageStatus::Ready,
        failure: None,
        digest: Some(digest('b')),
        size: 2048,
        manifest: Manifest {
            root: component,
            components: vec![ManifestEntry {
                id: connection,
                name: "crm".into(),
                kind: ComponentType::Connection,
                revision: 1,
                sha256: digest('c'),
                size: 10,
                extensions: Default::default(),
            }],
        },
        requirements: vec![],
        commit: None,
        created_by: "alice".into(),
        created_at: now(),
    }
}

fn active(package: &Package, environment: EnvironmentId) -> ActiveVersion {
    ActiveVersion {
        environment_id: environment,
        component_id: package.component_id,
        package_id: package.id,
        version: package.version.clone(),
        digest: package.digest.clone().unwrap(),
        deployment_id: DeploymentId::new(),
        activated_at: now(),
        components: package.manifest.components.clone(),
        extensions_version: None,
    }
}

mod deployments {
    use super::*;
    use DeploymentStatus::*;
    use DeploymentStep::*;

    fn deployment(status: DeploymentStatus) -> Deployment {
        let mut d = Deployment::new_deploy(EnvironmentId::new(), &package(ComponentId::new()), "alice", String::new(), None);
        d.status = status;
        d
    }

    fn approve() -> DeploymentStep {
        Approve { hold_until: None }
    }

    fn hold() -> DeploymentStep {
        Hold { until: now() + TimeDelta::hours(1) }
    }

    /// Each step once (and each outcome a settle can name, plus one it cannot).
    fn steps() -> Vec<DeploymentStep> {
        let steps = vec![
            approve(),
            Reject,
            Cancel,
            Due,
            hold(),
            Start,
            FailToStart,
            Settle(Succeeded),
            Settle(Failed),
            Settle(PartiallyFailed),
            Settle(RolledBack),
            Settle(Queued),
            Retry,
            Supersede,
            Halt,
            Resume,
        ];
        for step in &steps {
            // A new step fails to compile here: list it above and give it its rows.
            match step {
                Approve { .. } | Reject | Cancel | Due | Hold { .. } | Start | FailToStart | Settle(_) | Retry | Supersede | Halt | Resume => {}
            }
        }
        steps
    }

    #[derive(Clone, Copy, Debug)]
    enum Then {
        To(DeploymentStatus),
        /// 409 `deployment_started`.
        Started,
        /// 409 `not_pending_approval`.
        NotPending,
        /// 409 `not_retryable`.
        NotRetryable,
        /// 409 `not_haltable`.
        NotHaltable,
        /// 409 `not_halted`.
        NotHalted,
        /// No use case makes this move.
        Invalid,
    }
    use Then::*;

    #[rustfmt::skip]
    fn table() -> Vec<(DeploymentStatus, DeploymentStep, Then)> {
        vec![
        (PendingApproval, approve(), To(Queued)),
        (PendingApproval, Reject, To(Rejected)),
        (PendingApproval, Cancel, To(Cancelled)),
        (PendingApproval, Due, Invalid),
        (PendingApproval, hold(), Invalid),
        (PendingApproval, Start, Invalid),
        (PendingApproval, FailToStart, To(Failed)),
        (PendingApproval, Settle(Succeeded), Invalid),
        (PendingApproval, Settle(Failed), Invalid),
        (PendingApproval, Settle(PartiallyFailed), Invalid),
        (PendingApproval, Settle(RolledBack), Invalid),
        (PendingApproval, Settle(Queued), Invalid),
        (PendingApproval, Retry, NotRetryable),
        (PendingApproval, Supersede, Invalid),
        (Approved, approve(), NotPending),
        (Approved, Reject, NotPending),
        (Approved, Cancel, To(Cancelled)),
        (Approved, Due, Invalid),
        (Approved, hold(), Invalid),
        (Approved, Start, Invalid),
        (Approved, FailToStart, To(Failed)),
        (Approved, Settle(Succeeded), Invalid),
        (Approved, Settle(Failed), Invalid),
        (Approved, Settle(PartiallyFailed), Invalid),
        (Approved, Settle(RolledBack), Invalid),
        (Approved, Settle(Queued), Invalid),
        (Approved, Retry, NotRetryable),
        (Approved, Supersede, Invalid),
        (Scheduled, approve(), NotPending),
        (Scheduled, Reject, NotPending),
        (Scheduled, Cancel, To(Cancelled)),
        (Scheduled, Due, To(Queued)),
        (Scheduled, hold(), To(Scheduled)),
        (Scheduled, Start, Invalid),
        (Scheduled, FailToStart, To(Failed)),
        (Scheduled, Settle(Succeeded), Invalid),
        (Scheduled, Settle(Failed), Invalid),
        (Scheduled, Settle(PartiallyFailed), Invalid),
        (Scheduled, Settle(RolledBack), Invalid),
        (Scheduled, Settle(Queued), Invalid),
        (Scheduled, Retry, NotRetryable),
        (Scheduled, Supersede, Invalid),
        (Queued, approve(), NotPending),
        (Queued, Reject, NotPending),
        (Queued, Cancel, To(Cancelled)),
        (Queued, Due, Invalid),
        (Queued, hold(), Invalid),
        (Queued, Start, To(InProgress)),
        (Queued, FailToStart, To(Failed)),
        (Queued, Settle(Succeeded), Invalid),
        (Queued, Settle(Failed), Invalid),
        (Queued, Settle(PartiallyFailed), Invalid),
        (Queued, Settle(RolledBack), Invalid),
        (Queued, Settle(Queued), Invalid),
        (Queued, Retry, NotRetryable),
        (Queued, Supersede, Invalid),
        (InProgress, approve(), NotPending),
        (InProgress, Reject, NotPending),
        (InProgress, Cancel, Started),
        (InProgress, Due, Invalid),
        (InProgress, hold(), Invalid),
        (InProgress, Start, Invalid),
        (InProgress, FailToStart, To(Failed)),
        (InProgress, Settle(Succeeded), To(Succeeded)),
        (InProgress, Settle(Failed), To(Failed)),
        (InProgress, Settle(PartiallyFailed), To(PartiallyFailed)),
        (InProgress, Settle(RolledBack), To(RolledBack)),
        (InProgress, Settle(Queued), Invalid),
        (InProgress, Retry, NotRetryable),
        (InProgress, Supersede, Invalid),
        (Succeeded, approve(), NotPending),
        (Succeeded, Reject, NotPending),
        (Succeeded, Cancel, Started),
        (Succeeded, Due, Invalid),
        (Succeeded, hold(), Invalid),
        (Succeeded, Start, Invalid),
        (Succeeded, FailToStart, Invalid),
        (Succeeded, Settle(Succeeded), Invalid),
        (Succeeded, Settle(Failed), Invalid),
        (Succeeded, Settle(PartiallyFailed), Invalid),
        (Succeeded, Settle(RolledBack), Invalid),
        (Succeeded, Settle(Queued), Invalid),
        (Succeeded, Retry, NotRetryable),
        (Succeeded, Supersede, To(Superseded)),
        (Failed, approve(), NotPending),
        (Failed, Reject, NotPending),
        (Failed, Cancel, Started),
        (Failed, Due, Invalid),
        (Failed, hold(), Invalid),
        (Failed, Start, Invalid),
        (Failed, FailToStart, Invalid),
        (Failed, Settle(Succeeded), Invalid),
        (Failed, Settle(Failed), Invalid),
        (Failed, Settle(PartiallyFailed), Invalid),
        (Failed, Settle(RolledBack), To(RolledBack)),
        (Failed, Settle(Queued), Invalid),
        (Failed, Retry, To(InProgress)),
        (Failed, Supersede, Invalid),
        (PartiallyFailed, approve(), NotPending),
        (PartiallyFailed, Reject, NotPending),
        (PartiallyFailed, Cancel, Started),
        (PartiallyFailed, Due, Invalid),
        (PartiallyFailed, hold(), Invalid),
        (PartiallyFailed, Start, Invalid),
        (PartiallyFailed, FailToStart, Invalid),
        (PartiallyFailed, Settle(Succeeded), Invalid),
        (PartiallyFailed, Settle(Failed), Invalid),
        (PartiallyFailed, Settle(PartiallyFailed), Invalid),
        (PartiallyFailed, Settle(RolledBack), To(RolledBack)),
        (PartiallyFailed, Settle(Queued), Invalid),
        (PartiallyFailed, Retry, To(InProgress)),
        (PartiallyFailed, Supersede, Invalid),
        (RolledBack, approve(), NotPending),
        (RolledBack, Reject, NotPending),
        (RolledBack, Cancel, Started),
        (RolledBack, Due, Invalid),
        (RolledBack, hold(), Invalid),
        (RolledBack, Start, Invalid),
        (RolledBack, FailToStart, Invalid),
        (RolledBack, Settle(Succeeded), Invalid),
        (RolledBack, Settle(Failed), Invalid),
        (RolledBack, Settle(PartiallyFailed), Invalid),
        (RolledBack, Settle(RolledBack), Invalid),
        (RolledBack, Settle(Queued), Invalid),
        (RolledBack, Retry, To(InProgress)),
        (RolledBack, Supersede, Invalid),
        (Superseded, approve(), NotPending),
        (Superseded, Reject, NotPending),
        (Superseded, Cancel, Started),
        (Superseded, Due, Invalid),
        (Superseded, hold(), Invalid),
        (Superseded, Start, Invalid),
        (Superseded, FailToStart, Invalid),
        (Superseded, Settle(Succeeded), Invalid),
        (Superseded, Settle(Failed), Invalid),
        (Superseded, Settle(PartiallyFailed), Invalid),
        (Superseded, Settle(RolledBack), Invalid),
        (Superseded, Settle(Queued), Invalid),
        (Superseded, Retry, NotRetryable),
        (Superseded, Supersede, Invalid),
        (Cancelled, approve(), NotPending),
        (Cancelled, Reject, NotPending),
        (Cancelled, Cancel, Started),
        (Cancelled, Due, Invalid),
        (Cancelled, hold(), Invalid),
        (Cancelled, Start, Invalid),
        (Cancelled, FailToStart, Invalid),
        (Cancelled, Settle(Succeeded), Invalid),
        (Cancelled, Settle(Failed), Invalid),
        (Cancelled, Settle(PartiallyFailed), Invalid),
        (Cancelled, Settle(RolledBack), Invalid),
        (Cancelled, Settle(Queued), Invalid),
        (Cancelled, Retry, NotRetryable),
        (Cancelled, Supersede, Invalid),
        (Rejected, approve(), NotPending),
        (Rejected, Reject, NotPending),
        (Rejected, Cancel, Started),
        (Rejected, Due, Invalid),
        (Rejected, hold(), Invalid),
        (Rejected, Start, Invalid),
        (Rejected, FailToStart, Invalid),
        (Rejected, Settle(Succeeded), Invalid),
        (Rejected, Settle(Failed), Invalid),
        (Rejected, Settle(PartiallyFailed), Invalid),
        (Rejected, Settle(RolledBack), Invalid),
        (Rejected, Settle(Queued), Invalid),
        (Rejected, Retry, NotRetryable),
        (Rejected, Supersede, Invalid),
        // A rollout halted and resumed.
        (PendingApproval, Halt, NotHaltable),
        (PendingApproval, Resume, NotHalted),
        (Approved, Halt, NotHaltable),
        (Approved, Resume, NotHalted),
        (Scheduled, Halt, NotHaltable),
        (Scheduled, Resume, NotHalted),
        (Queued, Halt, NotHaltable),
        (Queued, Resume, NotHalted),
        (InProgress, Halt, To(Halted)),
        (InProgress, Resume, NotHalted),
        (Succeeded, Halt, NotHaltable),
        (Succeeded, Resume, NotHalted),
        (Failed, Halt, NotHaltable),
        (Failed, Resume, NotHalted),
        (PartiallyFailed, Halt, NotHaltable),
        (PartiallyFailed, Resume, NotHalted),
        (RolledBack, Halt, NotHaltable),
        (RolledBack, Resume, NotHalted),
        (Superseded, Halt, NotHaltable),
        (Superseded, Resume, NotHalted),
        (Cancelled, Halt, NotHaltable),
        (Cancelled, Resume, NotHalted),
        (Rejected, Halt, NotHaltable),
        (Rejected, Resume, NotHalted),
        (Halted, Halt, NotHaltable),
        (Halted, Resume, To(InProgress)),
        (Halted, approve(), NotPending),
        (Halted, Reject, NotPending),
        (Halted, Cancel, Started),
        (Halted, Due, Invalid),
        (Halted, hold(), Invalid),
        (Halted, Start, Invalid),
        (Halted, FailToStart, Invalid),
        (Halted, Settle(Succeeded), Invalid),
        (Halted, Settle(Failed), Invalid),
        (Halted, Settle(PartiallyFailed), Invalid),
        (Halted, Settle(RolledBack), Invalid),
        (Halted, Settle(Queued), Invalid),
        (Halted, Retry, NotRetryable),
        (Halted, Supersede, Invalid),
        ]
    }

    #[test]
    fn every_status_answers_every_step_as_the_table_says() {
        let table = table();
        for from in DeploymentStatus::ALL {
            for step in steps() {
                let rows = table.iter().filter(|(s, e, _)| *s == from && *e == step).count();
                assert_eq!(rows, 1, "{from:?} + {step:?} needs exactly one row");
            }
        }
        assert_eq!(table.len(), DeploymentStatus::ALL.len() * steps().len(), "a row for a step not in steps()");
        for (from, step, then) in table {
            let want = match then {
                To(status) => Ok(status),
                Started => Err(DeploymentRefused::AlreadyStarted(from)),
                NotPending => Err(DeploymentRefused::NotPendingApproval(from)),
                NotRetryable => Err(DeploymentRefused::NotRetryable(from)),
                NotHaltable => Err(DeploymentRefused::NotHaltable(from)),
                NotHalted => Err(DeploymentRefused::NotHalted(from)),
                Invalid => Err(DeploymentRefused::NotAllowed { from, step }),
            };
            assert_eq!(deployment(from).step(step, now()).map(|d| d.status), want, "{from:?} + {step:?}");
        }
    }

    /// A sync (one runtime newly attached) takes every step a deploy takes,
    /// by the same rows, and never holds the environment's lock on the way.
    #[test]
    fn a_sync_answers_every_step_as_the_table_says_and_never_holds_the_lock() {
        let env = EnvironmentId::new();
        let p = package(ComponentId::new());
        let runtime = RuntimeId::new();
        for (from, step, then) in table() {
            let mut sync = Deployment::new_sync(&active(&p, env), &p, "alice", runtime);
            sync.status = from;
            assert!(!sync.holds_lock(), "a sync that is {from:?} holds no lock");
            let got = sync.step(step, now()).map(|d| d.status);
            let want = match then {
                To(status) => Ok(status),
                Started => Err(DeploymentRefused::AlreadyStarted(from)),
                NotPending => Err(DeploymentRefused::NotPendingApproval(from)),
                NotRetryable => Err(DeploymentRefused::NotRetryable(from)),
                NotHaltable => Err(DeploymentRefused::NotHaltable(from)),
                NotHalted => Err(DeploymentRefused::NotHalted(from)),
                Invalid => Err(DeploymentRefused::NotAllowed { from, step }),
            };
            assert_eq!(got, want, "sync {from:?} + {step:?}");
            if let Ok(after) = sync.step(step, now()) {
                assert!(!after.releases_lock_from(from) && !after.takes_lock_from(from), "sync {from:?} + {step:?} moves no lock");
            }
        }
    }

    #[test]
    fn cancelling_a_started_deployment_is_refused_with_the_api_code_and_message() {
        let refused = deployment(InProgress).step(Cancel, now()).unwrap_err();
        let crate::DomainError::Conflict { code, message } = crate::DomainError::from(refused) else { panic!("not a conflict") };
        assert_eq!(code, "deployment_started");
        assert_eq!(message, "a deployment that is in_progress can no longer be cancelled");
    }

    #[test]
    fn retrying_or_deciding_in_the_wrong_status_keeps_the_api_codes_and_messages() {
        let retry = crate::DomainError::from(deployment(Succeeded).step(Retry, now()).unwrap_err());
        assert!(
            matches!(retry, crate::DomainError::Conflict { code: "not_retryable", ref message } if message == "only failed deployments can be retried; this one is succeeded")
        );
        let decide = crate::DomainError::from(deployment(Queued).step(Reject, now()).unwrap_err());
        assert!(
            matches!(decide, crate::DomainError::Conflict { code: "not_pending_approval", ref message } if message == "the deployment is queued, not waiting for approvals")
        );
    }

    #[test]
    fn an_approval_inside_a_freeze_window_holds_the_deployment_until_the_window_ends() {
        let until = now() + TimeDelta::hours(2);
        let approved = deployment(PendingApproval).step(Approve { hold_until: Some(until) }, now()).unwrap();
        assert_eq!((approved.status, approved.scheduled_at), (Scheduled, Some(until)));

        let mut scheduled_later = deployment(PendingApproval);
        scheduled_later.scheduled_at = Some(now() + TimeDelta::hours(3));
        let approved = scheduled_later.step(Approve { hold_until: Some(until) }, now()).unwrap();
        assert_eq!(approved.scheduled_at, Some(now() + TimeDelta::hours(3)), "the later of the two times");
    }

    #[test]
    fn an_approval_after_the_scheduled_time_queues_the_deployment_at_once() {
        let mut d = deployment(PendingApproval);
        d.scheduled_at = Some(now() - TimeDelta::minutes(5));
        let approved = d.step(approve(), now()).unwrap();
        assert_eq!((approved.status, approved.scheduled_at), (Queued, None));
    }

    #[test]
    fn a_scheduled_deployment_is_not_released_before_its_time() {
        let mut d = deployment(Scheduled);
        let at = now() + TimeDelta::minutes(1);
        d.scheduled_at = Some(at);
        assert_eq!(d.step(Due, now()), Err(DeploymentRefused::NotDue(at)));
        d.scheduled_at = Some(now());
        assert_eq!(d.step(Due, now()).map(|d| d.status), Ok(Queued));
    }

    #[test]
    fn starting_stamps_started_at_and_every_ending_stamps_finished_at() {
        let started = deployment(Queued).step(Start, now()).unwrap();
        assert_eq!((started.started_at, started.finished_at), (Some(now()), None));
        for (from, step) in [(Queued, Cancel), (PendingApproval, Reject), (Queued, FailToStart), (InProgress, Settle(Succeeded)), (Failed, Settle(RolledBack))]
        {
            assert_eq!(deployment(from).step(step, now()).unwrap().finished_at, Some(now()), "{from:?} + {step:?}");
        }
    }

    #[test]
    fn a_retried_deployment_is_in_progress_again_and_no_longer_finished() {
        let mut failed = deployment(InProgress);
        failed.started_at = Some(now() - TimeDelta::minutes(10));
        let failed = failed.step(Settle(Failed), now()).unwrap();
        let retried = failed.step(Retry, now()).unwrap();
        assert_eq!((retried.status, retried.finished_at, retried.started_at), (InProgress, None, failed.started_at));
    }

    #[test]
    fn a_package_older_than_the_active_version_is_a_redeploy_and_any_other_a_deploy() {
        let env = EnvironmentId::new();
        let component = ComponentId::new();
        let older = package(component);
        let newer = package(component);
        let running_newer = active(&newer, env);
        let redeploy = Deployment::for_package(env, &older, "alice", String::new(), Some(&running_newer));
        assert_eq!((redeploy.kind, redeploy.previous_package_id), (DeploymentKind::Redeploy, Some(newer.id)));
        let running_older = active(&older, env);
        assert_eq!(Deployment::for_package(env, &newer, "alice", String::new(), Some(&running_older)).kind, DeploymentKind::Deploy);
        let first = Deployment::for_package(env, &newer, "alice", String::new(), None);
        assert_eq!((first.kind, first.previous_package_id, first.status), (DeploymentKind::Deploy, None, Queued));
        assert_eq!(first.connections, vec![newer.manifest.components[0].id], "its bundled connections take licences from the request on");
    }

    #[test]
    fn a_rollback_and_an_undeploy_name_the_version_they_replace() {
        let env = EnvironmentId::new();
        let component = ComponentId::new();
        let previous = package(component);
        let current = active(&package(component), env);
        let rollback = Deployment::new_rollback(&previous, "system:auto-rollback", "automatic".into(), &current);
        assert_eq!((rollback.kind, rollback.environment_id, rollback.package_id), (DeploymentKind::Rollback, env, previous.id));
        assert_eq!(rollback.previous_package_id, Some(current.package_id));

        let runtime = RuntimeId::new();
        let undeploy = Deployment::new_undeploy(&current, "alice", Some(runtime));
        assert_eq!((undeploy.kind, undeploy.package_id, undeploy.only_runtime), (DeploymentKind::Undeploy, current.package_id, Some(runtime)));
        assert_eq!(undeploy.notes, format!("runtime {runtime} detached from the environment"));
    }

    #[test]
    fn a_sync_sends_the_active_version_to_one_runtime_and_waits_for_nothing() {
        let env = EnvironmentId::new();
        let p = package(ComponentId::new());
        let current = active(&p, env);
        let runtime = RuntimeId::new();
        let sync = Deployment::new_sync(&current, &p, "alice", runtime);
        assert_eq!((sync.kind, sync.status, sync.only_runtime), (DeploymentKind::Sync, Queued, Some(runtime)));
        assert_eq!((sync.environment_id, sync.component_id, sync.package_id), (env, p.component_id, current.package_id));
        assert_eq!((&sync.digest, sync.size, sync.required_approvals), (&current.digest, p.size, 0));
        assert!(sync.connections.is_empty(), "the active version holds its licences already");
        assert_eq!(serde_json::to_value(sync.kind).unwrap(), serde_json::json!("sync"));
    }

    #[test]
    fn a_deployment_is_stored_under_the_field_names_items_already_use() {
        let mut d = deployment(Succeeded);
        d.change_request_id = Some(ChangeRequestId::new());
        d.previous_package_id = Some(PackageId::new());
        d.started_at = Some(now());
        d.finished_at = Some(now());
        let stored = serde_json::to_value(&d).unwrap();
        let mut names: Vec<&str> = stored.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "change_request_id",
                "component_id",
                "connections",
                "created_at",
                "decisions",
                "digest",
                "environment_id",
                "finished_at",
                "id",
                "kind",
                "notes",
                "package_id",
                "previous_package_id",
                "requested_by",
                "required_approvals",
                "size",
                "started_at",
                "status",
                "version",
            ],
            "unset options (scheduled_at, only_runtime) are left out, as before"
        );
        assert_eq!(serde_json::from_value::<Deployment>(stored).unwrap(), d);
    }

    #[test]
    fn an_item_written_before_the_optional_fields_existed_still_reads() {
        let d = deployment(Queued);
        let mut stored = serde_json::to_value(&d).unwrap();
        for later in ["connections", "required_approvals", "decisions"] {
            stored.as_object_mut().unwrap().remove(later);
        }
        let read: Deployment = serde_json::from_value(stored).unwrap();
        assert_eq!((read.connections.len(), read.required_approvals, read.decisions), (0, 0, 0));
        assert_eq!(read.id, d.id);
    }
}

mod targets {
    use super::*;
    use TargetState::*;
    use TargetStep::*;

    /// Delivered a while ago, with its deadline passed: `Expire` applies.
    fn target(state: TargetState) -> Target {
        let mut t = Target::pending(DeploymentId::new(), RuntimeId::new(), now() - TimeDelta::hours(1));
        t.state = state;
        t.deadline = Some(now() - TimeDelta::minutes(1));
        t
    }

    fn deliver() -> TargetStep {
        Deliver { deadline: now() + TimeDelta::minutes(15) }
    }

    fn report(phase: TargetState) -> TargetStep {
        Report { phase, message: String::new() }
    }

    fn backoff() -> TargetStep {
        Backoff { until: now() + TimeDelta::seconds(30) }
    }

    fn skip() -> TargetStep {
        Skip { reason: "the runtime was detached from the environment".into() }
    }

    /// Each step once, a report once per phase.
    fn steps() -> Vec<TargetStep> {
        let mut steps = vec![deliver()];
        steps.extend(TargetState::ALL.map(report));
        steps.extend([Expire, skip(), Reset, Release, Requeue, backoff()]);
        for step in &steps {
            // A new step fails to compile here: list it above and give it its rows.
            match step {
                Deliver { .. } | Report { .. } | Expire | Skip { .. } | Reset | Release | Requeue | Backoff { .. } => {}
            }
        }
        steps
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Then {
        To(TargetState),
        /// A repeated or late report: nothing changes.
        Stale,
        /// 409 `invalid_phase`.
        InvalidPhase,
        /// Its deadline has not passed.
        NotDue,
        /// No use case makes this move.
        Invalid,
    }
    use Then::*;

    fn then_of(result: Result<Target, TargetRefused>) -> Then {
        match result {
            Ok(t) => To(t.state),
            Err(TargetRefused::Stale) => Stale,
            Err(TargetRefused::InvalidPhase(_)) => InvalidPhase,
            Err(TargetRefused::NotDue) => NotDue,
            Err(TargetRefused::NotAllowed { .. }) => Invalid,
        }
    }

    #[rustfmt::skip]
    fn table() -> Vec<(TargetState, TargetStep, Then)> {
        vec![
        (Pending, deliver(), To(Delivered)),
        (Pending, report(Pending), Stale),
        (Pending, report(Delivered), To(Delivered)),
        (Pending, report(Downloading), To(Downloading)),
        (Pending, report(BackingUp), To(BackingUp)),
        (Pending, report(Applying), To(Applying)),
        (Pending, report(Deployed), To(Deployed)),
        (Pending, report(Failed), To(Failed)),
        (Pending, report(Restored), InvalidPhase),
        (Pending, report(Skipped), InvalidPhase),
        (Pending, Expire, To(Failed)),
        (Pending, skip(), To(Skipped)),
        (Pending, Reset, Invalid),
        (Delivered, deliver(), To(Delivered)),
        (Delivered, report(Pending), Stale),
        (Delivered, report(Delivered), Stale),
        (Delivered, report(Downloading), To(Downloading)),
        (Delivered, report(BackingUp), To(BackingUp)),
        (Delivered, report(Applying), To(Applying)),
        (Delivered, report(Deployed), To(Deployed)),
        (Delivered, report(Failed), To(Failed)),
        (Delivered, report(Restored), InvalidPhase),
        (Delivered, report(Skipped), InvalidPhase),
        (Delivered, Expire, To(Failed)),
        (Delivered, skip(), To(Skipped)),
        (Delivered, Reset, Invalid),
        (Downloading, deliver(), To(Downloading)),
        (Downloading, report(Pending), Stale),
        (Downloading, report(Delivered), Stale),
        (Downloading, report(Downloading), Stale),
        (Downloading, report(BackingUp), To(BackingUp)),
        (Downloading, report(Applying), To(Applying)),
        (Downloading, report(Deployed), To(Deployed)),
        (Downloading, report(Failed), To(Failed)),
        (Downloading, report(Restored), InvalidPhase),
        (Downloading, report(Skipped), InvalidPhase),
        (Downloading, Expire, To(Failed)),
        (Downloading, skip(), To(Skipped)),
        (Downloading, Reset, Invalid),
        (BackingUp, deliver(), To(BackingUp)),
        (BackingUp, report(Pending), Stale),
        (BackingUp, report(Delivered), Stale),
        (BackingUp, report(Downloading), Stale),
        (BackingUp, report(BackingUp), Stale),
        (BackingUp, report(Applying), To(Applying)),
        (BackingUp, report(Deployed), To(Deployed)),
        (BackingUp, report(Failed), To(Failed)),
        (BackingUp, report(Restored), InvalidPhase),
        (BackingUp, report(Skipped), InvalidPhase),
        (BackingUp, Expire, To(Failed)),
        (BackingUp, skip(), To(Skipped)),
        (BackingUp, Reset, Invalid),
        (Applying, deliver(), To(Applying)),
        (Applying, report(Pending), Stale),
        (Applying, report(Delivered), Stale),
        (Applying, report(Downloading), Stale),
        (Applying, report(BackingUp), Stale),
        (Applying, report(Applying), Stale),
        (Applying, report(Deployed), To(Deployed)),
        (Applying, report(Failed), To(Failed)),
        (Applying, report(Restored), InvalidPhase),
        (Applying, report(Skipped), InvalidPhase),
        (Applying, Expire, To(Failed)),
        (Applying, skip(), To(Skipped)),
        (Applying, Reset, Invalid),
        (Deployed, deliver(), Invalid),
        (Deployed, report(Pending), Stale),
        (Deployed, report(Delivered), Stale),
        (Deployed, report(Downloading), Stale),
        (Deployed, report(BackingUp), Stale),
        (Deployed, report(Applying), Stale),
        (Deployed, report(Deployed), Stale),
        (Deployed, report(Failed), InvalidPhase),
        (Deployed, report(Restored), Stale),
        (Deployed, report(Skipped), InvalidPhase),
        (Deployed, Expire, Invalid),
        (Deployed, skip(), Invalid),
        (Deployed, Reset, Invalid),
        (Failed, deliver(), Invalid),
        (Failed, report(Pending), Stale),
        (Failed, report(Delivered), Stale),
        (Failed, report(Downloading), Stale),
        (Failed, report(BackingUp), Stale),
        (Failed, report(Applying), Stale),
        (Failed, report(Deployed), InvalidPhase),
        (Failed, report(Failed), Stale),
        (Failed, report(Restored), To(Restored)),
        (Failed, report(Skipped), InvalidPhase),
        (Failed, Expire, Invalid),
        (Failed, skip(), To(Skipped)),
        (Failed, Reset, To(Pending)),
        (Restored, deliver(), Invalid),
        (Restored, report(Pending), Stale),
        (Restored, report(Delivered), Stale),
        (Restored, report(Downloading), Stale),
        (Restored, report(BackingUp), Stale),
        (Restored, report(Applying), Stale),
        (Restored, report(Deployed), Stale),
        (Restored, report(Failed), Stale),
        (Restored, report(Restored), Stale),
        (Restored, report(Skipped), InvalidPhase),
        (Restored, Expire, Invalid),
        (Restored, skip(), To(Skipped)),
        (Restored, Reset, To(Pending)),
        (Skipped, deliver(), Invalid),
        (Skipped, report(Pending), Stale),
        (Skipped, report(Delivered), Stale),
        (Skipped, report(Downloading), Stale),
        (Skipped, report(BackingUp), Stale),
        (Skipped, report(Applying), Stale),
        (Skipped, report(Deployed), Stale),
        (Skipped, report(Failed), Stale),
        (Skipped, report(Restored), Stale),
        (Skipped, report(Skipped), Stale),
        (Skipped, Expire, Invalid),
        (Skipped, skip(), Invalid),
        (Skipped, Reset, Invalid),
        // Batches (waiting, released, requeued by a resume) and automatic retries (back off).
        (Pending, report(Waiting), InvalidPhase),
        (Pending, Release, Invalid),
        (Pending, Requeue, Invalid),
        (Pending, backoff(), Invalid),
        (Delivered, report(Waiting), InvalidPhase),
        (Delivered, Release, Invalid),
        (Delivered, Requeue, Invalid),
        (Delivered, backoff(), Invalid),
        (Downloading, report(Waiting), InvalidPhase),
        (Downloading, Release, Invalid),
        (Downloading, Requeue, Invalid),
        (Downloading, backoff(), Invalid),
        (BackingUp, report(Waiting), InvalidPhase),
        (BackingUp, Release, Invalid),
        (BackingUp, Requeue, Invalid),
        (BackingUp, backoff(), Invalid),
        (Applying, report(Waiting), InvalidPhase),
        (Applying, Release, Invalid),
        (Applying, Requeue, Invalid),
        (Applying, backoff(), Invalid),
        (Deployed, report(Waiting), InvalidPhase),
        (Deployed, Release, Invalid),
        (Deployed, Requeue, Invalid),
        (Deployed, backoff(), Invalid),
        (Failed, report(Waiting), InvalidPhase),
        (Failed, Release, Invalid),
        (Failed, Requeue, Invalid),
        (Failed, backoff(), To(Failed)),
        (Restored, report(Waiting), InvalidPhase),
        (Restored, Release, Invalid),
        (Restored, Requeue, Invalid),
        (Restored, backoff(), To(Restored)),
        (Skipped, report(Waiting), InvalidPhase),
        (Skipped, Release, Invalid),
        (Skipped, Requeue, To(Waiting)),
        (Skipped, backoff(), Invalid),
        (Waiting, deliver(), Invalid),
        (Waiting, report(Waiting), InvalidPhase),
        (Waiting, report(Pending), InvalidPhase),
        (Waiting, report(Delivered), InvalidPhase),
        (Waiting, report(Downloading), InvalidPhase),
        (Waiting, report(BackingUp), InvalidPhase),
        (Waiting, report(Applying), InvalidPhase),
        (Waiting, report(Deployed), InvalidPhase),
        (Waiting, report(Failed), InvalidPhase),
        (Waiting, report(Restored), InvalidPhase),
        (Waiting, report(Skipped), InvalidPhase),
        (Waiting, Expire, Invalid),
        (Waiting, skip(), To(Skipped)),
        (Waiting, Reset, Invalid),
        (Waiting, Release, To(Pending)),
        (Waiting, Requeue, Invalid),
        (Waiting, backoff(), Invalid),
        ]
    }

    #[test]
    fn every_state_answers_every_step_as_the_table_says() {
        let table = table();
        for from in TargetState::ALL {
            for step in steps() {
                let rows = table.iter().filter(|(s, e, _)| *s == from && *e == step).count();
                assert_eq!(rows, 1, "{from:?} + {step:?} needs exactly one row");
            }
        }
        assert_eq!(table.len(), TargetState::ALL.len() * steps().len(), "a row for a step not in steps()");
        for (from, step, then) in table {
            assert_eq!(then_of(target(from).step(step.clone(), now())), then, "{from:?} + {step:?}");
        }
    }

    #[test]
    fn a_delivered_job_gets_its_deadline_once_and_keeps_it_when_handed_out_again() {
        let mut pending = target(Pending);
        pending.deadline = None;
        let delivered = pending.step(deliver(), now()).unwrap();
        assert_eq!(delivered.deadline, Some(now() + TimeDelta::minutes(15)));
        let again = delivered.step(Deliver { deadline: now() + TimeDelta::hours(9) }, now()).unwrap();
        assert_eq!((again.state, again.deadline), (Delivered, delivered.deadline));
    }

    #[test]
    fn a_job_is_expired_only_once_its_deadline_passed() {
        let mut applying = target(Applying);
        applying.deadline = Some(now() + TimeDelta::seconds(1));
        assert_eq!(applying.step(Expire, now()), Err(TargetRefused::NotDue));
        applying.deadline = None;
        assert_eq!(applying.step(Expire, now()), Err(TargetRefused::NotDue));
        let expired = target(Applying).step(Expire, now()).unwrap();
        assert_eq!((expired.state, expired.message.as_str()), (Failed, "the job did not finish before its deadline"));
    }

    #[test]
    fn a_report_records_the_agents_message_and_an_impossible_one_is_an_invalid_phase() {
        let reported = target(Applying).step(Report { phase: Failed, message: "disk full".into() }, now()).unwrap();
        assert_eq!((reported.state, reported.message.as_str(), reported.updated_at), (Failed, "disk full", now()));
        let refused = crate::DomainError::from(target(Deployed).step(report(Failed), now()).unwrap_err());
        assert!(matches!(refused, crate::DomainError::Conflict { code: "invalid_phase", .. }));
    }

    #[test]
    fn a_retried_target_is_a_new_pending_job() {
        let failed = target(Failed);
        let reset = failed.step(Reset, now()).unwrap();
        assert_ne!(reset.job_id, failed.job_id);
        assert_eq!((reset.state, reset.message.as_str(), reset.deadline), (Pending, "retry", None));
        assert_eq!(reset.attempt, 2, "its attempt is counted");
    }

    #[test]
    fn a_failed_target_with_a_try_left_is_unsettled_until_its_retry_and_the_sweeper_watches_that_time() {
        let failed = target(Failed);
        assert!(failed.settled() && failed.failed_for_good());
        let backing_off = failed.step(backoff(), now()).unwrap();
        assert_eq!((backing_off.state, backing_off.retry_at), (Failed, Some(now() + TimeDelta::seconds(30))));
        assert!(!backing_off.settled() && !backing_off.failed_for_good(), "it does not count as failed yet");
        assert_eq!(backing_off.watched_deadline(), backing_off.retry_at);
        let restored = backing_off.step(report(Restored), now()).unwrap();
        assert_eq!(restored.retry_at, backing_off.retry_at, "the agent's restore keeps the retry");
        assert_eq!(backing_off.step(backoff(), now()), Err(TargetRefused::NotAllowed { from: Failed, step: "back off" }), "one retry at a time");
        let retried = restored.step(Reset, now()).unwrap();
        assert_eq!((retried.state, retried.attempt, retried.retry_at), (Pending, 2, None));
    }

    #[test]
    fn a_target_in_a_later_batch_waits_and_gets_no_job_until_its_batch_starts() {
        let waiting = Target::pending(DeploymentId::new(), RuntimeId::new(), now()).in_batch(2);
        assert_eq!((waiting.state, waiting.batch, waiting.attempt), (Waiting, 2, 1));
        assert!(!waiting.settled());
        assert_eq!(waiting.watched_deadline(), None);
        let first = Target::pending(DeploymentId::new(), RuntimeId::new(), now()).in_batch(1);
        assert_eq!(first.state, Pending);
        let released = waiting.step(Release, now()).unwrap();
        assert_eq!((released.state, released.job_id), (Pending, waiting.job_id));
    }

    #[test]
    fn a_skipped_target_says_why() {
        let skipped = target(Delivered).step(skip(), now()).unwrap();
        assert_eq!(skipped.message, "the runtime was detached from the environment");
    }
}
