//! The contract of every storage port (`berth_domain::ports`), written once
//! and run against both stores: the in-memory one (`berth-memory`, which the
//! use-case tests run on) and the AWS adapters on LocalStack (`berth-aws`,
//! which production runs on). A check that passes on one store and fails on
//! the other is a drift between them. Each check is a function of `Stores`;
//! `contract!` makes it two tests, `memory::<check>` and `dynamo::<check>`.
//!
//! What only DynamoDB has (item layout, keys, crafted cursors, editing items
//! behind the store's back) is checked in `shared/aws/tests/store.rs`.

mod fixtures;
mod stores;

mod api_keys;
mod audit;
mod blobs;
mod change_requests;
mod components;
mod credentials;
mod deployments;
mod environments;
mod extensions;
mod idempotency;
mod inbox;
mod packages;
mod policies;
mod quarantine;
mod queue_credentials;
mod queues;
mod rollouts;
mod runtimes;
mod tenants;
mod uploads;
mod webhooks;

macro_rules! contract {
    ($($module:ident :: $check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::$module::$check(crate::stores::Stores::memory()).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::$module::$check(crate::stores::Stores::dynamo().await).await;
                }
            )*
        }
    };
}

contract! {
    tenants::a_tenant_is_created_once_and_reads_back_as_written,
    tenants::a_tenant_update_from_a_stale_version_is_refused_and_changes_nothing,
    tenants::tenants_are_listed_oldest_first_page_by_page,

    environments::environment_names_are_unique_per_tenant_whatever_their_case_but_two_tenants_may_share_one,
    environments::an_environment_created_with_an_id_in_use_is_refused,
    environments::the_environment_quota_is_enforced_by_the_store_and_freed_on_delete,
    environments::an_update_from_a_stale_version_is_refused_and_a_rename_moves_the_name_reservation,
    environments::an_environment_with_attached_runtimes_cannot_be_deleted_until_they_are_detached,
    environments::deleting_an_environment_that_is_gone_is_refused_as_missing,
    environments::seven_environments_listed_three_at_a_time_come_back_each_exactly_once_in_creation_order,
    environments::a_list_cursor_from_another_tenant_or_another_list_is_refused,

    runtimes::the_runtime_quota_is_enforced_by_the_store_and_freed_on_delete,
    runtimes::a_runtime_is_stored_never_seen_and_attached_nowhere_once_per_id,
    runtimes::attaching_twice_changes_nothing_and_attaching_what_is_missing_is_refused,
    runtimes::detaching_what_is_not_attached_is_refused_and_a_detach_is_undone_everywhere,
    runtimes::deleting_a_runtime_detaches_it_from_every_environment_at_once,
    runtimes::deleting_a_runtime_read_before_one_of_its_attachments_went_is_refused,
    runtimes::deleting_a_runtime_read_before_it_was_attached_again_is_refused_and_leaves_no_orphan_attachment,
    runtimes::a_runtime_registration_completes_once,
    runtimes::a_heartbeat_is_recorded_on_the_runtime_unaudited_and_refused_for_a_missing_one,
    runtimes::runtimes_are_listed_oldest_first_and_each_lists_its_environments_in_attach_order,

    credentials::a_runtime_reads_back_its_registration_expiry,
    credentials::credentials_are_swapped_only_from_what_was_read_and_each_swap_is_audited_when_asked,
    credentials::a_registration_leaves_one_credential_nothing_pending_and_not_revoked,
    credentials::of_two_concurrent_swaps_from_the_same_read_exactly_one_wins,

    audit::twenty_concurrent_creates_leave_one_gapless_verifiable_audit_chain,
    audit::each_tenant_has_its_own_chain_from_the_genesis,
    audit::audit_events_are_read_one_by_one_after_a_seq_or_page_by_page_in_seq_order,
    audit::the_audit_checkpoint_only_moves_forward,
    audit::a_refused_write_records_no_audit_event,

    idempotency::an_idempotency_key_is_reserved_once_replayed_when_completed_and_free_again_when_released,

    components::component_names_are_unique_per_type_whatever_their_case,
    components::a_revision_is_added_only_on_top_of_the_revision_read,
    components::get_components_returns_those_that_exist_once_each,
    components::components_are_listed_oldest_first_and_revisions_per_component,

    packages::a_package_version_is_unique_per_component_and_counted_even_once_deleted,
    packages::packages_are_listed_newest_first_for_the_tenant_and_for_one_component,
    packages::a_building_package_is_ended_once_ready_or_failed_and_reads_back_as_ended,

    blobs::content_is_stored_under_its_sha256_and_a_second_put_is_a_no_op,
    blobs::a_package_archive_is_written_once_from_the_tenants_content,
    blobs::an_archive_of_content_the_tenant_does_not_hold_fails_and_leaves_nothing,
    blobs::a_download_url_lives_for_the_ttl_asked,
    uploads::an_upload_reads_back_for_its_tenant_only_and_moves_on_only_from_the_state_it_is_in,
    uploads::an_expired_upload_is_not_found_and_cannot_be_moved_on,
    uploads::a_staged_object_is_measured_hashed_only_at_the_declared_size_promoted_to_its_content_address_and_discarded,
    uploads::a_multipart_upload_is_assembled_only_once_every_part_is_there,

    queues::a_job_is_received_once_and_stays_hidden_until_its_receipt_shows_or_deletes_it,
    queues::a_message_that_is_not_a_job_is_received_without_one,
    queues::a_runtime_queue_is_created_once_per_runtime_and_deleted_quietly,
    queues::every_enqueued_deployment_reaches_the_deployments_queue,
    queues::every_enqueued_package_build_reaches_the_package_builds_queue_only,
    queues::hiding_with_a_receipt_no_message_was_received_with_is_refused_as_an_invalid_receipt_handle,

    queue_credentials::vended_credentials_are_fresh_each_time_and_expire_after_the_duration_asked,
    queue_credentials::a_runtime_queue_has_an_arn_in_the_vendors_region,

    policies::a_policy_is_stored_once_and_then_replaced_only_from_the_version_read,

    extensions::an_environments_values_are_stored_once_per_version_read_and_each_environment_has_its_own,
    extensions::a_sealed_value_opens_only_for_the_tenant_environment_component_and_field_it_was_sealed_for,
    extensions::a_connection_test_replaces_the_one_before_and_ends_only_while_it_is_the_pending_one,
    extensions::deleting_an_environment_removes_its_policy_its_extension_values_and_its_connection_tests_and_no_one_elses,

    change_requests::a_change_request_is_created_once_and_updated_only_from_the_version_read,
    change_requests::change_requests_are_listed_newest_first,
    change_requests::a_change_request_takes_one_decision_per_approver_and_set_of_digests_while_submitted,

    inbox::what_awaits_a_decision_is_listed_oldest_first_across_deployments_and_change_requests_until_it_moves_on,

    deployments::a_second_deployment_of_a_component_in_flight_is_refused_naming_the_holder,
    deployments::a_deployment_for_one_detached_runtime_takes_no_lock,
    deployments::a_deployment_is_created_once_per_id,
    deployments::moving_a_deployment_on_from_a_status_it_no_longer_has_is_refused,
    deployments::finishing_a_deployment_releases_its_lock_so_the_next_can_take_it,
    deployments::each_approver_decides_once_and_each_decision_is_counted_on_the_deployment,
    deployments::leaving_approval_is_refused_when_a_decision_arrived_since_they_were_counted,
    deployments::a_success_activates_the_version_marks_the_package_active_and_records_where_it_succeeded,
    deployments::a_new_success_supersedes_the_one_it_replaces_and_moves_the_activity_marker,
    deployments::a_package_s_successes_name_the_deployment_that_last_succeeded_in_each_environment,
    deployments::an_activation_that_does_not_replace_what_is_active_is_refused_and_changes_nothing,
    deployments::an_undeploy_deactivates_the_component_and_supersedes_what_it_removed,
    deployments::reopening_a_failed_deployment_takes_the_lock_again_and_resets_its_targets,
    deployments::a_target_is_put_once_per_runtime_and_its_job_leads_back_to_its_deployment,
    deployments::a_target_is_replaced_only_from_the_state_and_job_read_and_keeps_its_receipt,
    deployments::deployment_events_are_listed_oldest_first_page_by_page,
    deployments::a_deployments_targets_are_put_at_once_and_a_redelivery_writes_only_the_missing_ones,
    deployments::what_settling_reads_is_read_together_and_only_the_tenants,
    audit::a_change_chained_first_to_a_stale_head_hint_is_chained_to_the_real_head,
    deployments::connection_slots_follow_what_is_in_flight_and_active_across_environments_of_the_tenant_only,
    deployments::a_deployment_and_one_of_its_targets_are_read_together_and_only_the_tenants,
    deployments::timeline_lines_are_written_with_the_move_they_tell_of_and_not_without_it,
    packages::a_deploy_subject_is_read_at_once_and_only_the_tenants,
    deployments::deployments_are_listed_newest_first_and_filters_keep_only_what_matches,
    deployments::the_sweeper_sees_delivered_jobs_past_their_deadline_across_tenants,
    deployments::the_sweeper_sees_scheduled_deployments_once_due_and_queued_ones_left_waiting,
    rollouts::a_rollout_moves_on_only_from_the_step_it_read_and_a_halt_and_a_resume_give_up_and_take_the_lock,
    rollouts::a_failed_target_is_reset_to_its_next_try_only_from_the_state_and_job_read_and_its_new_job_leads_back,
    rollouts::the_sweeper_sees_a_rollout_once_its_bake_ends_and_a_failed_target_once_its_retry_is_due,

    webhooks::a_webhook_is_stored_once_per_id_and_its_tenant_is_found_from_its_id_alone,
    webhooks::a_webhook_is_replaced_only_from_the_version_read_and_deleted_with_its_global_entry,
    webhooks::webhooks_are_listed_oldest_first_page_by_page_and_a_foreign_cursor_is_refused,
    webhooks::attempts_are_counted_per_webhook_and_minute_and_start_again_in_the_next_minute,
    webhooks::a_delivery_id_is_claimed_once_per_webhook_until_it_is_released,
    webhooks::only_an_authenticated_delivery_under_its_claim_is_found_by_id_and_a_refused_forgery_claims_nothing,
    webhooks::deliveries_are_listed_newest_first_page_by_page_per_webhook,
    webhooks::a_sealed_secret_opens_for_its_tenant_only_and_does_not_show_the_clear_text,
    quarantine::a_finish_records_its_quarantine_once_per_environment_and_package_naming_the_latest_cause,
    quarantine::a_refused_finish_quarantines_nothing,
    quarantine::a_lifted_quarantine_is_gone_audited_and_lifting_one_that_is_not_there_is_refused_as_missing,
    api_keys::an_api_key_is_created_once_per_id_and_reads_back_as_written_for_its_tenant_only,
    api_keys::an_api_key_is_revoked_once_its_record_stays_and_a_missing_one_is_refused,
    api_keys::an_api_key_use_is_recorded_unaudited_only_when_none_is_recorded_since_the_threshold,
    api_keys::api_keys_are_listed_oldest_first_page_by_page_revoked_ones_included,
}
