//! `target/bench/plot.svg`: the report's series, drawn with `plotters` (SVG
//! only): fan-out time and AWS calls against the number of runtimes, and
//! audited writes a second against concurrent writers, each on a log x axis.

use crate::report::{Report, Series};
use plotters::prelude::*;
use std::path::Path;

/// One panel: its title, its y label, and the series it draws (by name).
struct Panel {
    title: &'static str,
    y_label: &'static str,
    series: &'static [&'static str],
}

const PANELS: [Panel; 3] = [
    Panel { title: "Fan-out: request to every target delivered", y_label: "seconds", series: &["fanout_seconds"] },
    Panel { title: "Fan-out: AWS calls", y_label: "calls", series: &["fanout_calls", "fanout_gateway_calls"] },
    Panel { title: "Audited writes: one tenant vs as many tenants", y_label: "writes/s", series: &["audit_one_tenant", "audit_many_tenants"] },
];

/// Draws every panel that has points; writes nothing when none has (a run of other phases).
pub fn plot(report: &Report, path: &Path) -> anyhow::Result<bool> {
    let panels: Vec<(&Panel, Vec<(&str, &Series)>)> = PANELS
        .iter()
        .map(|p| (p, p.series.iter().filter_map(|name| report.series.get(*name).filter(|s| !s.points.is_empty()).map(|s| (*name, s))).collect::<Vec<_>>()))
        .filter(|(_, series)| !series.is_empty())
        .collect();
    if panels.is_empty() {
        return Ok(false);
    }
    let root = SVGBackend::new(path, (480 * panels.len() as u32, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let areas = root.split_evenly((1, panels.len()));
    for ((panel, series), area) in panels.iter().zip(areas.iter()) {
        let points = series.iter().flat_map(|(_, s)| s.points.iter());
        let x_max = points.clone().map(|p| p.0).fold(1.0_f64, f64::max) * 1.5;
        let y_max = points.map(|p| p.1).fold(0.0_f64, f64::max) * 1.1;
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        let x_label = series[0].1.x_label.clone();
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0.8_f64..x_max).log_scale(), 0.0_f64..y_max)
            .map_err(draw_error)?;
        chart.configure_mesh().x_desc(x_label).y_desc(panel.y_label).draw().map_err(draw_error)?;
        for (i, (name, s)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
                .map_err(draw_error)?
                .label(format!("{name}: {}", s.y_label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(draw_error)?;
    }
    root.present().map_err(draw_error)?;
    Ok(true)
}

fn draw_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_draws_each_series_with_its_points_and_labels() {
        let mut report = Report::default();
        for (n, s) in [(1.0, 0.5), (10.0, 1.2), (100.0, 9.0)] {
            report.point("fanout_seconds", "runtimes", "seconds", n, s);
            report.point("fanout_calls", "runtimes", "calls", n, 10.0 + 2.0 * n);
        }
        let path = std::env::temp_dir().join(format!("berth-bench-plot-{}.svg", std::process::id()));
        assert!(plot(&report, &path).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"), "an SVG document");
        assert!(svg.contains("Fan-out: AWS calls") && svg.contains("fanout_seconds"), "titles and legends are drawn");
        assert!(!svg.contains("Audited writes"), "a panel without points is left out");
        assert!(svg.matches("<circle").count() >= 6, "every point is drawn");
        assert!(!plot(&Report::default(), &path).unwrap(), "no series, no plot");
    }
}
