//! The kernel command line: space-separated `key=value` options.

/// The value of `key`, if present.
pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|opt| {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        (k == key).then_some(v)
    })
}

/// The log level from `log=error|warn|info|debug|trace` (default info).
pub fn log_level(cmdline: &str) -> log::LevelFilter {
    match get(cmdline, "log") {
        Some("error") => log::LevelFilter::Error,
        Some("warn") => log::LevelFilter::Warn,
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    }
}
