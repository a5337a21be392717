//! Flame graphs (SVG) from folded stacks, rendered by inferno.

use std::collections::BTreeMap;
use std::io::{self, Write};

use inferno::flamegraph::{self, Options};

/// Renders `stacks` (folded stack → count) as a flame graph titled `title`.
pub fn write_flamegraph(out: impl Write, stacks: &BTreeMap<String, u64>, title: &str, unit: &str) -> io::Result<()> {
    let lines: Vec<String> = stacks.iter().map(|(stack, n)| format!("{stack} {n}")).collect();
    let mut options = Options::default();
    options.title = title.to_string();
    options.count_name = unit.to_string();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flame_graph_shows_its_root_frames() {
        let stacks = BTreeMap::from([("hasher;run;hash".to_string(), 8), ("[idle];idle".to_string(), 2)]);
        let mut svg = Vec::new();
        write_flamegraph(&mut svg, &stacks, "samples", "samples").expect("renders");
        let svg = String::from_utf8(svg).expect("utf-8");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("hasher") && svg.contains("[idle]") && svg.contains("hash"));
    }
}
