//! The dashboards' PromQL: every `targets[].expr` of every `dashboards/*.json`, with
//! the dashboard variables filled in, and the check that each returns data.

use std::{collections::BTreeSet, path::PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Check, KERNEL, SYNTHETIC, check, prometheus::Prometheus};
use crate::process::workspace_root;

/// What the dashboards' interval variables stand for in the checked queries.
const RATE_INTERVAL: &str = "1m";
const INTERVAL: &str = "15s";
const RANGE: &str = "5m";

/// One PromQL expression of a dashboard.
#[derive(Debug)]
pub struct Expr {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// Every `targets[].expr` of every `dashboards/*.json`, with its panel title.
pub fn dashboard_exprs() -> Result<Vec<Expr>> {
    let dir = workspace_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("read {}", f.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", f.display()))?;
        let name = f.file_name().unwrap_or_default().to_string_lossy().to_string();
        walk(&v, &name, "", &mut out);
    }
    Ok(out)
}

fn walk(v: &Value, dashboard: &str, panel: &str, out: &mut Vec<Expr>) {
    match v {
        Value::Object(o) => {
            let panel = o.get("title").and_then(Value::as_str).unwrap_or(panel);
            if let Some(targets) = o.get("targets").and_then(Value::as_array) {
                for t in targets {
                    if let Some(expr) = t.get("expr").and_then(Value::as_str) {
                        out.push(Expr {
                            dashboard: dashboard.to_string(),
                            panel: panel.to_string(),
                            expr: expr.to_string(),
                        });
                    }
                }
            }
            for (k, child) in o {
                if k != "targets" {
                    walk(child, dashboard, panel, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| walk(c, dashboard, panel, out)),
        _ => {}
    }
}

/// `expr` with the dashboard variables replaced by concrete values; an error names a
/// variable left over.
pub fn substitute(expr: &str, instance: &str) -> Result<String> {
    let mut e = expr.to_string();
    for (var, value) in [
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", INTERVAL),
        ("__range", RANGE),
        ("instance", instance),
    ] {
        e = e
            .replace(&format!("${{{var}}}"), value)
            .replace(&format!("${var}"), value);
    }
    if let Some(at) = e.find('$') {
        bail!("unknown dashboard variable at `{}` in {expr}", &e[at..]);
    }
    Ok(e)
}

/// The `lucid_…` metric names `expr` reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("lucid_") {
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// Queries every expression on the synthetic console, and on the kernel's console
/// too when the kernel sends every metric it reads: each must return data.
pub fn every_expression_returns_data(prom: &Prometheus, exprs: &[Expr]) -> Result<Check> {
    // Metrics the kernel sends data for: panels reading only these must show the
    // kernel's data, not just the synthetic stream's.
    let kernel_names: BTreeSet<String> = prom
        .label_values("__name__", &format!("{{instance=\"{KERNEL}\"}}"))?
        .into_iter()
        .collect();
    let mut empty = Vec::new();
    let mut on_kernel = 0;
    for e in exprs {
        let names = metric_names(&e.expr);
        let mut instances = vec![SYNTHETIC];
        if !names.is_empty() && names.is_subset(&kernel_names) {
            instances.push(KERNEL);
            on_kernel += 1;
        }
        for instance in instances {
            let at = format!("{} / {:?} ({instance})", e.dashboard, e.panel);
            match substitute(&e.expr, instance).and_then(|q| Ok((prom.query(&q)?, q))) {
                Ok((result, q)) if result.is_empty() => empty.push(format!("{at}: no data: {q}")),
                Ok(_) => {}
                Err(err) => empty.push(format!("{at}: {err:#}")),
            }
        }
        if names.is_empty() {
            empty.push(format!(
                "{} / {:?}: reads no lucid_ metric: {}",
                e.dashboard, e.panel, e.expr
            ));
        }
    }
    println!(
        "metrics e2e: {} dashboard expressions queried ({} also on the kernel's data)",
        exprs.len(),
        on_kernel
    );
    Ok(check(
        "every dashboard expression returns data",
        !exprs.is_empty() && empty.is_empty(),
        if exprs.is_empty() {
            "no expressions found in dashboards/*.json".to_string()
        } else {
            format!("empty results:\n  {}", empty.join("\n  "))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_in_and_unknown_ones_named() {
        let e = r#"sum(rate(lucid_polls_total{instance="$instance"}[$__rate_interval])) / ${__range}"#;
        assert_eq!(
            substitute(e, "k").unwrap(),
            r#"sum(rate(lucid_polls_total{instance="k"}[1m])) / 5m"#
        );
        assert_eq!(
            substitute("x{i=\"${instance}\"}[$__interval]", "k").unwrap(),
            "x{i=\"k\"}[15s]"
        );
        let err = substitute("lucid_polls_total{cpu=\"$cpu\"}", "k").unwrap_err();
        assert!(err.to_string().contains("`$cpu\"}`"), "{err}");
    }

    #[test]
    fn metric_names_are_whole_lucid_identifiers() {
        let names = metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(lucid_a_bucket{x=\"y\"}[1m]))) / my_lucid_b + lucid_c",
        );
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["lucid_a_bucket", "lucid_c"]);
    }

    #[test]
    fn every_target_expr_of_nested_panels_is_found_with_its_title() {
        let v: Value = serde_json::from_str(
            r#"{"panels": [
                {"type": "row", "title": "r", "panels": [{"title": "inner", "targets": [{"expr": "a"}, {"refId": "B"}]}]},
                {"title": "outer", "targets": [{"expr": "b"}]}
            ], "templating": {"list": [{"query": "label_values(x, instance)"}]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        walk(&v, "d.json", "", &mut out);
        let got: Vec<(&str, &str)> = out.iter().map(|e| (e.panel.as_str(), e.expr.as_str())).collect();
        assert_eq!(got, [("inner", "a"), ("outer", "b")]);
    }

    #[test]
    fn every_dashboard_has_the_datasource_and_instance_variables() {
        let dir = workspace_root().join("dashboards");
        let mut n = 0;
        for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            if f.extension().is_none_or(|x| x != "json") {
                continue;
            }
            n += 1;
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let vars = v["templating"]["list"].as_array().unwrap();
            let var = |name: &str| {
                vars.iter()
                    .find(|x| x["name"] == name)
                    .unwrap_or_else(|| panic!("{f:?}: no ${name}"))
            };
            assert_eq!(
                (&var("datasource")["type"], &var("datasource")["query"]),
                (&"datasource".into(), &"prometheus".into())
            );
            let instance = var("instance");
            assert_eq!(instance["type"], "query");
            assert_eq!(instance["definition"], "label_values(lucid_events_total, instance)");
            for p in v["panels"].as_array().unwrap() {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{f:?} {}", p["title"]);
            }
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn the_checked_in_dashboards_have_expressions_and_their_variables() {
        let exprs = dashboard_exprs().unwrap();
        assert!(exprs.len() >= 20, "{}", exprs.len());
        for e in &exprs {
            substitute(&e.expr, "x").unwrap();
            assert!(!metric_names(&e.expr).is_empty(), "{e:?}");
        }
    }
}
