//! `strider calibrate`: fit the CPU profile's kernel factors to this machine and write the profile.

use std::fmt::Write as _;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, WrapErr, miette};
use strider_check::calibration::{CalibrateOptions, Calibration, ThreadCalibration, calibrate_per_threads};
use strider_check::table::{Align, Table};

/// Times the calibration layers at each of `threads` (thread counts) with a spinner on a terminal,
/// and fits the profile.
pub fn run(opts: &CalibrateOptions, threads: &[usize]) -> miette::Result<ThreadCalibration> {
    let base = super::optimize::cpu_profile(0)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let mut progress = |message: &str| bar.set_message(message.to_string());
    let calibration = calibrate_per_threads(&base, threads, opts, &mut progress)
        .map_err(|e| miette!("a calibration layer does not run: {e}"))?;
    bar.finish_and_clear();
    Ok(calibration)
}

/// The profile as RON, with a header saying where it comes from and how well it fits.
pub fn profile_text(c: &ThreadCalibration) -> miette::Result<String> {
    let pretty = ron::ser::PrettyConfig::new().depth_limit(4);
    let body = ron::ser::to_string_pretty(&c.target, pretty).into_diagnostic()?;
    let mut header = format!(
        "// Written by `strider calibrate` for {}: every op is priced by the engine kernel it runs on,\n\
         // per_flop · FLOPs + per_byte · bytes moved + per_call, in nanoseconds.\n",
        c.target.name
    );
    for (threads, fit) in &c.fits {
        let _ = writeln!(
            header,
            "// Fit at {threads} thread(s): median relative error {:.0}%; the cheapest form is the measured\n\
             // fastest (within 10%) on {} of {} calibration layers.",
            100.0 * fit.median_relative_error,
            fit.picks_within_10_percent,
            fit.layers,
        );
    }
    Ok(format!("{header}{body}\n"))
}

/// Writes the profile to `path`.
pub fn write(c: &ThreadCalibration, path: &Path) -> miette::Result<()> {
    std::fs::write(path, profile_text(c)?)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// Every fit's timed forms with its predictions, and its summary.
pub fn render(c: &ThreadCalibration) -> String {
    c.fits.iter().map(|(_, fit)| render_fit(fit)).collect()
}

/// One fit's timed forms with the profile's prediction, and the summary.
fn render_fit(c: &Calibration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", c.target.name);
    let mut table = Table::new([
        ("layer", Align::Left),
        ("form", Align::Left),
        ("measured ms", Align::Right),
        ("predicted ms", Align::Right),
    ]);
    for s in &c.samples {
        table.row([s.layer.clone(), s.form.clone(), format!("{:.3}", s.measured_ms), format!("{:.3}", s.predicted_ms)]);
    }
    out.push_str(&table.text());
    let _ = writeln!(
        out,
        "median relative error {:.0}%; picks the measured fastest (within 10%) on {} of {} layers",
        100.0 * c.median_relative_error,
        c.picks_within_10_percent,
        c.layers
    );
    out
}
