use lucid_console::live::Session;
use lucid_console::state::{Config, MAX_TASKS};
use lucid_console::time::HostNs;
use lucid_console::ui::tasks::Column;
use lucid_console::ui::{App, View, draw};
use lucid_protocol::TaskId;
use lucid_protocol::testdata::{Workload, generate};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

fn main() {
    let view = std::env::args().nth(1).unwrap_or("tasks".into());
    let g = generate(&Workload {
        cpus: 4,
        tasks: 1_000_000,
        polls_per_task: 2,
        wasm_instances: 0,
        live: true,
        distinct_names: true,
        ..Workload::default()
    });
    let wire = g.wire();
    let config = Config {
        max_tasks: MAX_TASKS.max(2_000_000),
        ..Config::default()
    };
    let mut s = Session::new("bench".into(), config);
    for chunk in wire.chunks(64 * 1024) {
        s.feed(HostNs(0), chunk);
    }
    s.flush();
    let mut app = App::new(s);
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    app.detail.task = Some(TaskId(1));
    app.view = View::ALL
        .into_iter()
        .find(|v| v.title().to_lowercase() == view)
        .unwrap();
    app.tasks.sort = Column::Busy;
    if let Ok(c) = std::env::var("SORT") {
        if c == "waiting" {
            app.tasks.sort = Column::Waiting;
        }
        if c == "name" {
            app.tasks.sort = Column::Name;
        }
    }
    if let Ok(f) = std::env::var("FILTER") {
        app.tasks.filter = f;
    }
    let t = Instant::now();
    terminal.draw(|f| draw(f, &mut app)).unwrap();
    eprintln!("READY first {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    for _ in 0..200 {
        terminal.draw(|f| draw(f, &mut app)).unwrap();
    }
    eprintln!("{view}: {:.2} ms/frame", t.elapsed().as_secs_f64() * 1e3 / 200.0);
}
