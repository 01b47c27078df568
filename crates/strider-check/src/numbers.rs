//! Numbers for people: every table, message and chart formats counts, FLOPs and bytes here, so one
//! model prints the same quantity the same way in every command.
//!
//! - [`si`]: quantities too large to read digit by digit (FLOPs, costs): `67.11M`;
//! - [`bytes`]: memory in powers of 1024, the unit `--max-memory` is given in: `15.03 MiB`;
//! - [`grouped`]: exact counts with thousands separators: `3,578,624`;
//! - [`count`]: a count with its noun in the right number: `1 node`, `14 nodes`.

/// A number with an SI suffix: 1234567 → `1.23M`; below 1000 the number itself (three decimals when
/// it is small and not whole).
pub fn si(v: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let small = |v: f64| if v.abs() >= 10.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.3}") };
    units.iter().find(|(scale, _)| v.abs() >= *scale).map_or_else(|| small(v), |(s, u)| format!("{:.2}{u}", v / s))
}

/// A byte count in binary units: 52 → `52 B`, 15756688 → `15.03 MiB`.
pub fn bytes(b: u128) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut value = b as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

/// An exact count with a comma every three digits: 3578624 → `3,578,624`.
pub fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A count and its noun, plural unless the count is one: `1 node`, `2 classes`, `1,024 elements`.
pub fn count(n: u128, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let plural = if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) { "es" } else { "s" };
    format!("{} {noun}{plural}", grouped(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_keeps_three_significant_digits_or_the_whole_number() {
        assert_eq!(si(67_108_864.0), "67.11M");
        assert_eq!(si(1_234.0), "1.23k");
        assert_eq!(si(2.5e12), "2.50T");
        assert_eq!(si(32.0), "32");
        assert_eq!(si(0.125), "0.125");
        assert_eq!(si(-3_000_000.0), "-3.00M");
    }

    #[test]
    fn bytes_are_in_powers_of_1024() {
        assert_eq!(bytes(52), "52 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(15_756_688), "15.03 MiB");
        assert_eq!(bytes(8 << 30), "8.00 GiB");
    }

    #[test]
    fn grouped_puts_a_comma_every_three_digits() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(3_578_624), "3,578,624");
        assert_eq!(grouped(209_637_376), "209,637,376");
    }

    #[test]
    fn count_says_one_node_and_two_nodes() {
        assert_eq!(count(1, "node"), "1 node");
        assert_eq!(count(0, "node"), "0 nodes");
        assert_eq!(count(14, "node"), "14 nodes");
        assert_eq!(count(2, "class"), "2 classes");
        assert_eq!(count(1_024, "element"), "1,024 elements");
    }
}
