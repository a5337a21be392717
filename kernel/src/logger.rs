//! The `log` facade's sink: COM1, each line stamped with seconds since boot.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Com1Logger;

impl Log for Com1Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        crate::trace::subscriber::log_record(record);
        let t = crate::time::since_boot();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        crate::println!(
            "[{:>4}.{:06}] {level} {}: {}",
            t.as_secs(),
            t.subsec_micros(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: Com1Logger = Com1Logger;

/// Installs the COM1 logger at `level`.
pub fn init(level: LevelFilter) {
    // A second call (never made) would only keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
