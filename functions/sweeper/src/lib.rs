//! The sweeper's one step, shared by the Lambda and the local runner.

use berth_domain::usecases::{Berth, SweepReport};

pub async fn sweep_once(berth: &Berth) -> Result<SweepReport, berth_domain::DomainError> {
    let report = berth.sweep(chrono::Utc::now()).await?;
    if report != SweepReport::default() {
        tracing::info!(
            timed_out = report.timed_out,
            released = report.released,
            requeued = report.requeued,
            batches = report.batches,
            retried = report.retried,
            "sweep"
        );
    }
    Ok(report)
}
