//! `strider calibrate`: fit the CPU profile's kernel factors to this machine and write the profile.

use std::fmt::Write as _;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, WrapErr, miette};
use strider_check::calibration::{CalibrateOptions, Calibration, calibrate};
use strider_check::table::{Align, Table};

/// Times the calibration layers with a spinner on a terminal and fits the profile.
pub fn run(opts: &CalibrateOptions) -> miette::Result<Calibration> {
    let base = super::optimize::cpu_profile()?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let mut progress = |message: &str| bar.set_message(message.to_string());
    let calibration =
        calibrate(&base, opts, &mut progress).map_err(|e| miette!("a calibration layer does not run: {e}"))?;
    bar.finish_and_clear();
    Ok(calibration)
}

/// The profile as RON, with a header saying where it comes from and how well it fits.
pub fn profile_text(c: &Calibration) -> miette::Result<String> {
    let pretty = ron::ser::PrettyConfig::new().depth_limit(3);
    let body = ron::ser::to_string_pretty(&c.target, pretty).into_diagnostic()?;
    Ok(format!(
        "// Written by `strider calibrate` for {}: every op is priced by the engine kernel it runs on,\n\
         // per_flop · FLOPs + per_byte · bytes moved + per_call, in nanoseconds.\n\
         // Fit: median relative error {:.0}%; the cheapest form is the measured fastest (within 10%) on\n\
         // {} of {} calibration layers.\n{body}\n",
        c.target.name,
        100.0 * c.median_relative_error,
        c.picks_within_10_percent,
        c.layers,
    ))
}

/// Writes the profile to `path`.
pub fn write(c: &Calibration, path: &Path) -> miette::Result<()> {
    std::fs::write(path, profile_text(c)?)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// Every timed form with the profile's prediction, and the summary.
pub fn render(c: &Calibration) -> String {
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
