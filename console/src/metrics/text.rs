//! The Prometheus text exposition format (version 0.0.4): metric families with their
//! `# HELP` and `# TYPE` lines, samples with escaped label values.

use std::fmt::Write as _;

/// The `Content-Type` of a text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (the name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets with `_bucket{le}`, `_sum` and `_count`.
    Histogram,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A text exposition being written. Every sample carries the `instance` label first.
#[derive(Debug)]
pub struct Exposition {
    out: String,
    instance: String,
}

impl Exposition {
    /// An empty exposition whose samples are labelled `instance="<instance>"`.
    #[must_use]
    pub fn new(instance: &str) -> Self {
        Self {
            out: String::with_capacity(16 * 1024),
            instance: instance.to_string(),
        }
    }

    /// Starts the family `name`; its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample of an integer value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample of a real value.
    pub fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        self.out.push(' ');
        push_f64(&mut self.out, value);
        self.out.push('\n');
    }

    /// The samples of one histogram: `cumulative` as `(upper bound, count at or below
    /// it)` ascending, then the `+Inf` bucket (`count`), `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        cumulative: impl Iterator<Item = (f64, u64)>,
        sum: f64,
        count: u64,
    ) {
        let bucket = format!("{name}_bucket");
        for (le, n) in cumulative.chain([(f64::INFINITY, count)]) {
            let mut bound = String::new();
            push_f64(&mut bound, le);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &bound));
            self.sample(&bucket, &with_le, n);
        }
        self.sample_f64(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }

    /// The finished text.
    #[must_use]
    pub fn finish(self) -> String {
        self.out
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        self.out.push_str("{instance=\"");
        push_escaped(&mut self.out, &self.instance);
        self.out.push('"');
        for (k, v) in labels {
            self.out.push(',');
            self.out.push_str(k);
            self.out.push_str("=\"");
            push_escaped(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn push_escaped(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Go's `strconv.ParseFloat` reads it: Rust prints the shortest decimal
/// that reads back as the same value, without an exponent.
fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_histograms_end_with_inf_sum_and_count() {
        let mut e = Exposition::new("a\"b\\c\nd");
        e.family("x_total", Kind::Counter, "Line one\nback\\slash.");
        e.sample("x_total", &[("cpu", "1")], 7);
        e.family("h_seconds", Kind::Histogram, "H.");
        e.histogram("h_seconds", &[], [(0.0000025, 1), (1.0, 3)].into_iter(), 1.5, 4);
        e.family("g", Kind::Gauge, "G.");
        e.sample_f64("g", &[], f64::NAN);
        let text = e.finish();
        let inst = r#"instance="a\"b\\c\nd""#;
        let expected = format!(
            "# HELP x_total Line one\\nback\\\\slash.\n# TYPE x_total counter\n\
             x_total{{{inst},cpu=\"1\"}} 7\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{{{inst},le=\"0.0000025\"}} 1\n\
             h_seconds_bucket{{{inst},le=\"1\"}} 3\n\
             h_seconds_bucket{{{inst},le=\"+Inf\"}} 4\n\
             h_seconds_sum{{{inst}}} 1.5\n\
             h_seconds_count{{{inst}}} 4\n\
             # HELP g G.\n# TYPE g gauge\n\
             g{{{inst}}} NaN\n"
        );
        assert_eq!(text, expected);
    }
}
