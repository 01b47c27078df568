//! The study's SVG charts: one measure per chart against the swept value (lines, a marker shape per
//! grid cell) or the layers of a model (grouped bars), and the roofline (arithmetic intensity
//! against GF/s under the measured GEMM peak and memory bandwidth). Every chart gives a form one
//! fixed colour, puts its legend right of the plot, and ticks its log axes at 1, 2, 5 × 10ⁿ.

use plotters::coord::Shift;
use plotters::prelude::*;
use strider_rewrite::isolate::Form;

use super::{Configuration, LAYER_AXIS, Measurement, Study, si};

/// The charts beside `report.md`, as a Markdown section: each file and what it shows.
pub(super) fn listing(study: &Study) -> String {
    let x = &study.x_label;
    let roof = format!(
        "GF/s against arithmetic intensity (FLOPs per byte of intermediates and constants), one point per \
         configuration and form, under the roof min({:.1} GF/s GEMM peak, {:.1} GB/s memory bandwidth × intensity)",
        study.setup.machine.gemm_peak_gflops, study.setup.memory_bandwidth_gbs
    );
    let charts = [
        ("speedup.svg", format!("each form's speed-up over the direct form against {x}")),
        ("time.svg", format!("median run time against {x}")),
        ("flops.svg", format!("FLOPs against {x}")),
        ("bytes.svg", format!("bytes of intermediates and constants against {x}")),
        ("roofline.svg", roof),
    ];
    let mut out = String::from("## Charts\n\n");
    for (file, what) in charts {
        out.push_str(&format!("- [{file}]({file}): {what}\n"));
    }
    out.push('\n');
    out
}

/// A measure of one form in one configuration.
pub(super) type Measure<'a> = &'a dyn Fn(&Configuration, &Measurement) -> f64;

/// One fixed colour per form, the same in every chart.
fn colour(form: Form) -> RGBColor {
    const COLOURS: [RGBColor; 6] = [
        RGBColor(0, 0, 0),       // direct
        RGBColor(213, 94, 0),    // zero-insert
        RGBColor(204, 121, 167), // sparse-matmul
        RGBColor(0, 114, 178),   // col2im
        RGBColor(0, 158, 115),   // subpixel
        RGBColor(230, 159, 0),   // matmul
    ];
    COLOURS[Form::ALL.iter().position(|&f| f == form).unwrap_or(0)]
}

/// The series of a chart: per form and grid cell, its points (x, value).
type Series = Vec<((Form, String), Vec<(f64, f64)>)>;

/// The distinct x values of a study, in order: the chart places them at 0, 1, 2 … and labels them
/// with their values, so that uneven sweeps (1, 2, 4, 32) stay readable.
fn x_values(study: &Study) -> Vec<f64> {
    let mut xs: Vec<f64> = study.configurations.iter().map(|c| c.x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

fn series(study: &Study, pick: Measure) -> Series {
    let xs = x_values(study);
    let position = |x: f64| xs.iter().position(|&v| v == x).unwrap_or(0) as f64;
    let mut series: Series = Vec::new();
    for c in &study.configurations {
        for m in &c.measurements {
            let value = pick(c, m);
            if !value.is_finite() || value <= 0.0 {
                continue;
            }
            let key = (m.lowering, c.cell.clone());
            let point = (position(c.x), value);
            match series.iter_mut().find(|(k, _)| *k == key) {
                Some((_, points)) => points.push(point),
                None => series.push((key, vec![point])),
            }
        }
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// One SVG chart as text, the measure on a log scale against x: lines for a sweep (a marker shape
/// per grid cell), grouped bars for the layers of a model; the legend sits right of the plot.
pub(super) fn chart(study: &Study, title: &str, pick: Measure) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root, study, title, &series(study, pick))?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn draw(root: &DrawingArea<SVGBackend, Shift>, study: &Study, title: &str, series: &Series) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let xs = x_values(study);
    let (x0, x1) = (0.0, xs.len() as f64 - 1.0);
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
    let (y0, y1) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    let (plot, legend) = root.split_horizontally(760);
    if xs.is_empty() || !y0.is_finite() {
        plot.titled(&format!("{}: {title}: nothing was timed", study.name), ("sans-serif", 18)).map_err(|e| err(&e))?;
        return Ok(());
    }
    {
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{}: {title}", study.name), ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (x0 - 0.5)..(x1 + 0.5),
                ((y0 / 1.5)..(y1 * 1.5)).log_scale().with_key_points(log_ticks(y0 / 1.5, y1 * 1.5)),
            )
            .map_err(|e| err(&e))?;
        let label_at = |x: &f64| {
            let i = x.round();
            match xs.get(i as usize) {
                Some(v) if (x - i).abs() < 1e-6 && i >= 0.0 => format!("{v}"),
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .x_desc(study.x_label.as_str())
            .y_desc(title)
            .x_labels(xs.len() + 1)
            .x_max_light_lines(0)
            .x_label_formatter(&label_at)
            .y_label_formatter(&|y| si(*y))
            .draw()
            .map_err(|e| err(&e))?;
        let mut cells: Vec<&String> = Vec::new();
        for ((_, cell), _) in series {
            if !cells.contains(&cell) {
                cells.push(cell);
            }
        }
        let layers = study.x_label == LAYER_AXIS;
        let width = 0.8 / series.len().max(1) as f64;
        for (i, ((form, cell), points)) in series.iter().enumerate() {
            let style = colour(*form);
            let cell_index = cells.iter().position(|c| *c == cell).unwrap_or(0);
            if layers {
                let offset = -0.4 + width * i as f64;
                let bars = points
                    .iter()
                    .map(|&(x, y)| Rectangle::new([(x + offset, y0 / 1.5), (x + offset + width, y)], style.filled()));
                chart.draw_series(bars).map_err(|e| err(&e))?;
            } else {
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), style.stroke_width(2)))
                    .map_err(|e| err(&e))?;
                markers(&mut chart, cell_index, points, style)?;
            }
        }
        let forms: Vec<Form> = series.iter().map(|((form, _), _)| *form).collect();
        let cells: Vec<&str> = if layers { Vec::new() } else { cells.iter().map(|c| c.as_str()).collect() };
        legend_beside(&legend, &forms, &cells, &[])?;
    }
    Ok(())
}

/// Draws `points` with the marker of the `i`-th grid cell: a circle, a triangle or a cross.
fn markers<DB, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    i: usize,
    points: &[(f64, f64)],
    style: RGBColor,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let at = points.iter().copied();
    match i % 3 {
        0 => chart.draw_series(at.map(|p| Circle::new(p, 4, style.filled()))).map(|_| ()),
        1 => chart.draw_series(at.map(|p| TriangleMarker::new(p, 5, style.filled()))).map(|_| ()),
        _ => chart.draw_series(at.map(|p| Cross::new(p, 4, style.stroke_width(2)))).map(|_| ()),
    }
    .map_err(|e| e.to_string())
}

/// The legend in its own area beside the plot: a colour per form, a marker per non-empty grid cell,
/// then `notes` (text lines, e.g. what a roof line is).
fn legend_beside(
    area: &DrawingArea<SVGBackend, Shift>,
    forms: &[Form],
    cells: &[&str],
    notes: &[String],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let forms = Form::ALL.into_iter().filter(|f| forms.contains(f));
    let mut y = 40;
    for form in forms {
        area.draw(&Rectangle::new([(10, y - 6), (28, y + 6)], colour(form).filled())).map_err(|e| err(&e))?;
        area.draw(&Text::new(form.to_string(), (34, y - 7), ("sans-serif", 14))).map_err(|e| err(&e))?;
        y += 22;
    }
    for (i, cell) in cells.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        let at = (19, y);
        match i % 3 {
            0 => area.draw(&Circle::new(at, 4, BLACK.filled())),
            1 => area.draw(&TriangleMarker::new(at, 5, BLACK.filled())),
            _ => area.draw(&Cross::new(at, 4, BLACK.stroke_width(2))),
        }
        .map_err(|e| err(&e))?;
        area.draw(&Text::new(cell.to_string(), (34, y - 7), ("sans-serif", 14))).map_err(|e| err(&e))?;
        y += 22;
    }
    for note in notes {
        area.draw(&Text::new(note.clone(), (10, y - 7), ("sans-serif", 13))).map_err(|e| err(&e))?;
        y += 20;
    }
    Ok(())
}

/// Ticks of a log axis over `lo..hi`: the powers of ten inside it, with 2 and 5 times each when the
/// range spans fewer than three decades (and 1.5, 3 and 7 when less than one), so that a short range
/// still gets labels and a long one does not bunch them.
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let decades = (hi / lo).log10();
    let steps: &[f64] = if decades >= 3.0 {
        &[1.0]
    } else if decades >= 1.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
    };
    let mut ticks = Vec::new();
    let mut power = 10f64.powf(lo.log10().floor());
    while power <= hi {
        for step in steps {
            let t = power * step;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        power *= 10.0;
    }
    // Sparse decades over a very long range: every other power of ten.
    if ticks.len() > 8 {
        let keep = ticks.len().div_ceil(8);
        ticks = ticks.into_iter().step_by(keep).collect();
    }
    ticks
}

/// The roofline as SVG text: per configuration and form, its arithmetic intensity (FLOPs per byte
/// of intermediates and constants) against its GF/s, both on log axes, under the roof
/// min(GEMM peak, memory bandwidth × intensity). Colour per form, marker per grid cell.
pub(super) fn roofline(study: &Study) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut points: Vec<(Form, usize, (f64, f64))> = Vec::new();
    let mut cells: Vec<&str> = Vec::new();
    for c in &study.configurations {
        if !cells.contains(&c.cell.as_str()) {
            cells.push(&c.cell);
        }
        let cell = cells.iter().position(|&x| x == c.cell).unwrap_or(0);
        for m in &c.measurements {
            let intensity = m.flops as f64 / m.bytes as f64;
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if ok(intensity) && ok(m.gflops) {
                points.push((m.lowering, cell, (intensity, m.gflops)));
            }
        }
    }
    let peak = study.setup.machine.gemm_peak_gflops;
    let bandwidth = study.setup.memory_bandwidth_gbs;
    let roofed = peak.is_finite() && peak > 0.0 && bandwidth.is_finite() && bandwidth > 0.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (plot, legend) = root.split_horizontally(760);
        let title = format!("{}: roofline", study.name);
        if points.is_empty() {
            plot.titled(&format!("{title}: nothing was timed"), ("sans-serif", 18)).map_err(|e| err(&e))?;
        } else {
            let xs = points.iter().map(|p| p.2.0);
            let ys = points.iter().map(|p| p.2.1);
            let bounds =
                |v: &mut dyn Iterator<Item = f64>| v.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
            let (mut x0, mut x1) = bounds(&mut xs.into_iter());
            let (mut y0, mut y1) = bounds(&mut ys.into_iter());
            let ridge = peak / bandwidth;
            if roofed {
                (x0, x1) = (x0.min(ridge), x1.max(ridge));
                (y0, y1) = (y0.min(peak / 2.0), y1.max(peak));
            }
            (x0, x1, y0, y1) = (x0 / 2.0, x1 * 2.0, y0 / 2.0, y1 * 1.5);
            let mut chart = ChartBuilder::on(&plot)
                .caption(&title, ("sans-serif", 18))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(80)
                .build_cartesian_2d(
                    (x0..x1).log_scale().with_key_points(log_ticks(x0, x1)),
                    (y0..y1).log_scale().with_key_points(log_ticks(y0, y1)),
                )
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("arithmetic intensity (FLOPs per byte of intermediates and constants)")
                .y_desc("GF/s at the median")
                .x_label_formatter(&|x| si(*x))
                .y_label_formatter(&|y| si(*y))
                .draw()
                .map_err(|e| err(&e))?;
            if roofed {
                // The roof from where the bandwidth slope enters the plot, over the ridge, to the right edge.
                let start = x0.max(y0 / bandwidth);
                let roof = [(start, bandwidth * start), (ridge, peak), (x1, peak)];
                chart
                    .draw_series(LineSeries::new(roof, RGBColor(120, 120, 120).stroke_width(2)))
                    .map_err(|e| err(&e))?;
            }
            for &(form, cell, at) in &points {
                markers(&mut chart, cell, &[at], colour(form))?;
            }
        }
        let forms: Vec<Form> = points.iter().map(|p| p.0).collect();
        let notes = if roofed {
            vec![
                "grey line: the roof,".to_string(),
                format!("min({peak:.1} GF/s GEMM peak,"),
                format!("{bandwidth:.1} GB/s × intensity)"),
            ]
        } else {
            vec!["no roof: peak or bandwidth".to_string(), "not measured".to_string()]
        };
        let cells: Vec<&str> = if cells.len() > 1 { cells } else { Vec::new() };
        legend_beside(&legend, &forms, &cells, &notes)?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::fixtures::{COL2IM, DIRECT, SUBPIXEL, study, won};

    #[test]
    fn log_ticks_are_round_and_sparse() {
        assert_eq!(log_ticks(0.5, 20.0), [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(log_ticks(3.0, 9.0), [3.0, 5.0, 7.0]);
        let decades = log_ticks(1e-3, 1e3);
        assert_eq!(decades.len(), 7);
        assert!(decades.iter().zip([1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3]).all(|(a, b)| (a / b - 1.0).abs() < 1e-9));
        assert!(log_ticks(1e-6, 1e6).len() <= 8);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn roofline_has_a_point_per_form_and_configuration_under_the_roof() {
        let configurations =
            [DIRECT, SUBPIXEL, COL2IM, SUBPIXEL].iter().enumerate().map(|(i, &w)| won(i as f64, "", w));
        let svg = roofline(&study("stride", configurations.collect())).unwrap();
        // 4 configurations × 3 forms, all drawn as circles without a grid; the legend draws none.
        assert_eq!(svg.matches("<circle").count(), 12, "{svg}");
        // One roof: a grey polyline through the bandwidth slope, the ridge and the peak.
        let roof: Vec<&str> = svg.lines().filter(|l| l.contains(r##"stroke="#787878""##)).collect();
        assert_eq!(roof.len(), 1, "{svg}");
        assert_eq!(roof[0].split('"').rev().nth(1).unwrap().split_whitespace().count(), 3, "{}", roof[0]);
        assert!(svg.contains("min(10.0 GF/s GEMM peak,") && svg.contains("5.0 GB/s × intensity)"), "{svg}");
        assert!(svg.contains("arithmetic intensity") && svg.contains("GF/s at the median"), "{svg}");
        for form in ["direct", "subpixel", "col2im"] {
            assert!(svg.contains(&format!("\n{form}\n")), "{form}");
        }
    }

    #[test]
    fn roofline_marks_grid_cells_and_says_when_there_is_no_roof() {
        let mut s = study("stride", vec![won(1.0, "batch 1", DIRECT), won(1.0, "batch 4", DIRECT)]);
        s.setup.memory_bandwidth_gbs = f64::NAN;
        let svg = roofline(&s).unwrap();
        // Cell 1: 3 circles and the legend's; cell 2: triangles.
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(svg.contains("\nbatch 1\n") && svg.contains("\nbatch 4\n"), "{svg}");
        assert!(!svg.contains(r##"stroke="#787878""##), "{svg}");
        assert!(svg.contains("no roof"), "{svg}");
    }

    #[test]
    fn the_report_lists_every_chart() {
        let text = listing(&study("stride", vec![won(1.0, "", DIRECT)]));
        for file in ["speedup.svg", "time.svg", "flops.svg", "bytes.svg", "roofline.svg"] {
            assert!(text.contains(&format!("[{file}]({file})")), "{text}");
        }
        assert!(text.contains("min(10.0 GF/s GEMM peak, 5.0 GB/s memory bandwidth × intensity)"), "{text}");
    }
}
