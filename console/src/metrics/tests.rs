//! The exposition of states built from generated streams, read back with a parser of
//! the text format; and the HTTP endpoint.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use lucid_protocol::testdata::{Workload, generate, sample_messages};
use lucid_protocol::{Event, Item, Message, MessageKind, Ring, StreamId};

use super::*;
use crate::live::Session;
use crate::state::{Config, State};
use crate::stats::{Collected, Summary};
use crate::time::HostNs;

/// Sample name and its labels (sorted) → value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses a text exposition; panics on anything the format does not allow, and on
/// samples whose family has no `# TYPE` line before them.
fn parse(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(types.insert(name.into(), kind.into()).is_none(), "family {name} twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let open = line.find('{').expect("labels");
        let close = line.rfind('}').expect("labels end");
        let name = &line[..open];
        let family = match types.get(name) {
            Some(_) => name,
            None => ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or_else(|| panic!("sample {name} without a family")),
        };
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter {name} without _total");
        }
        let labels = parse_labels(&line[open + 1..close]);
        let value: f64 = match line[close + 1..].trim() {
            "+Inf" => f64::INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
        };
        assert!(out.insert((name.to_string(), labels), value).is_none(), "{line} twice");
    }
    out
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label {key} value must be quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("closing quote") {
                '"' => break,
                '\\' => value.push(match chars.next().expect("escape") {
                    'n' => '\n',
                    c => c,
                }),
                c => value.push(c),
            }
        }
        labels.push((key, value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels.sort();
    labels
}

/// Sum of the samples named `name` whose labels include every one of `with`.
fn sum(samples: &Samples, name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| v)
        .sum()
}

fn session_of(bytes: &[u8], config: Config) -> Session {
    let mut s = Session::new("test".into(), config);
    for chunk in bytes.chunks(1000) {
        s.feed(HostNs(1), chunk);
    }
    s
}

#[test]
fn the_exposition_of_a_generated_stream_reads_back_as_its_counts() {
    let g = generate(&Workload {
        tasks: 400,
        polls_per_task: 4,
        loss: 17,
        ..Workload::default()
    });
    // Completed tasks expire at once: the counters must not depend on them.
    let config = Config {
        retain_ns: 0,
        ..Config::default()
    };
    let collected: Collected = session_of(&g.wire(), config).finish();
    let state = &collected.state;
    assert!(state.tasks_expired > 0);
    let m = parse(&render(state, "box-1"));
    assert!(
        m.keys()
            .all(|(_, l)| l.iter().any(|(k, v)| k == "instance" && v == "box-1"))
    );
    let count = |k: MessageKind| g.counts.get(&k).copied().unwrap_or(0) as f64;
    for &k in MessageKind::ALL {
        assert_eq!(sum(&m, "lucid_events_total", &[("kind", k.name())]), count(k), "{k:?}");
    }
    let summary = Summary::new(&collected);
    assert_eq!(sum(&m, "lucid_tasks_spawned_total", &[]), summary.tasks as f64);
    assert_eq!(
        sum(&m, "lucid_tasks_completed_total", &[]),
        summary.tasks_completed as f64
    );
    assert_eq!(
        sum(&m, "lucid_dropped_events_total", &[]),
        summary.dropped_events as f64
    );
    assert_eq!(summary.dropped_events, 17);
    assert_eq!(sum(&m, "lucid_sequence_gaps_total", &[]), summary.sequence_gaps as f64);
    assert_eq!(sum(&m, "lucid_crc_errors_total", &[]), summary.crc_errors as f64);
    assert_eq!(sum(&m, "lucid_polls_total", &[]), count(MessageKind::PollStart));
    assert_eq!(sum(&m, "lucid_wakes_total", &[]), count(MessageKind::Wake));
    assert_eq!(sum(&m, "lucid_polls_total", &[("cpu", "2")]), {
        state.cpus[&2].totals.polls as f64
    });
    assert!(sum(&m, "lucid_polls_total", &[("cpu", "2")]) > 0.0);

    // Histograms: cumulative buckets, +Inf = count = polls ended, sum = busy time.
    let polls = count(MessageKind::PollEnd);
    assert_eq!(sum(&m, "lucid_poll_duration_seconds_count", &[]), polls);
    assert_eq!(sum(&m, "lucid_poll_duration_seconds_bucket", &[("le", "+Inf")]), polls);
    for cpu in state.cpus.keys() {
        let cpu = cpu.to_string();
        let mut previous = 0.0;
        for b in crate::state::LATENCY_BOUNDS_NS {
            let le = (b as f64 / 1e9).to_string();
            let n = sum(&m, "lucid_poll_duration_seconds_bucket", &[("cpu", &cpu), ("le", &le)]);
            assert!(n >= previous, "cpu {cpu} le {le}");
            previous = n;
        }
    }
    let busy_s: f64 = state.cpus.values().map(|c| c.busy_ticks.get() as f64).sum::<f64>() / state.tsc_hz() as f64;
    let poll_sum = sum(&m, "lucid_poll_duration_seconds_sum", &[]);
    let busy = sum(&m, "lucid_cpu_busy_seconds_total", &[]);
    assert!(
        (busy - busy_s).abs() < 1e-9 && (poll_sum - busy_s).abs() < 1e-6,
        "{busy} {poll_sum} {busy_s}"
    );
    assert_eq!(
        sum(&m, "lucid_scheduling_latency_seconds_count", &[]),
        count(MessageKind::Wake)
    );

    // Everything completed: no live task of any kind, but every series is there.
    assert_eq!(sum(&m, "lucid_tasks", &[]), 0.0);
    assert_eq!(m.keys().filter(|(n, _)| n == "lucid_tasks").count(), 6);
    assert_eq!(sum(&m, "lucid_wasm_instances", &[]), 2.0);
    let pages: u64 = state.wasm.values().map(|w| u64::from(w.memory_pages)).sum();
    assert_eq!(sum(&m, "lucid_wasm_memory_bytes", &[]), (pages * 65_536) as f64);
    let fuel: u64 = state.wasm.values().map(|w| w.fuel).sum();
    assert!(fuel > 0);
    assert_eq!(sum(&m, "lucid_wasm_fuel_consumed_total", &[]), fuel as f64);
}

#[test]
fn counters_only_grow_as_the_stream_goes_on() {
    let g = generate(&Workload {
        tasks: 300,
        polls_per_task: 3,
        ..Workload::default()
    });
    let wire = g.wire();
    let config = Config {
        retain_ns: 0,
        ..Config::default()
    };
    let mut s = Session::new("test".into(), config);
    let mut previous: Option<Samples> = None;
    let chunks: Vec<&[u8]> = wire.chunks(wire.len() / 5 + 1).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        s.feed(HostNs(1), chunk);
        if i + 1 == chunks.len() {
            // The end of the input: the merge lets go of what it held for ordering.
            s.flush();
        }
        let now = parse(&render(&s.state, "x"));
        if let Some(before) = &previous {
            for ((name, labels), v) in before {
                let counter = name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_bucket");
                if counter {
                    let after = now.get(&(name.clone(), labels.clone())).copied().unwrap_or(0.0);
                    assert!(after >= *v, "{name}{labels:?}: {v} then {after}");
                }
            }
        }
        previous = Some(now);
    }
    let last = previous.expect("chunks");
    assert_eq!(sum(&last, "lucid_polls_total", &[]), 900.0 + 2.0 * 3.0);
}

#[test]
fn wasm_traps_and_hostcalls_are_labelled_by_instance_code_and_hostcall() {
    let mut state = State::new();
    for (i, m) in sample_messages().iter().enumerate() {
        if matches!(
            m,
            Message::WasmInstanceCreated(_)
                | Message::WasmMemoryGrow { .. }
                | Message::WasmHostcalls { .. }
                | Message::WasmTrap(_)
        ) {
            state.apply(&Item::Event {
                stream: StreamId::new(0, Ring::Task),
                seq: 0,
                event: Event {
                    ts: 10 + i as u64,
                    message: *m,
                },
            });
        }
    }
    let m = parse(&render(&state, "x"));
    let inst = [("wasm_instance", "1"), ("module", "fib.wasm")];
    assert_eq!(
        sum(
            &m,
            "lucid_wasm_traps_total",
            &[inst[0], inst[1], ("code", "integer_division_by_zero")]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, "lucid_wasm_hostcalls_total", &[inst[0], ("hostcall", "yield")]),
        12.0
    );
    assert_eq!(
        sum(
            &m,
            "lucid_wasm_hostcall_duration_seconds_count",
            &[("hostcall", "yield")]
        ),
        12.0
    );
    // 4_800 ticks at the default 1 GHz.
    let s = sum(&m, "lucid_wasm_hostcall_duration_seconds_sum", &[("hostcall", "yield")]);
    assert!((s - 4.8e-6).abs() < 1e-12, "{s}");
    assert_eq!(sum(&m, "lucid_wasm_memory_bytes", &inst), 4.0 * 65_536.0);
    assert_eq!(sum(&m, "lucid_wasm_instances", &[("state", "trapped")]), 1.0);
}

#[test]
fn the_instance_label_is_the_given_name_or_the_build_id() {
    let g = generate(&Workload {
        tasks: 2,
        ..Workload::default()
    });
    let s = session_of(&g.wire(), Config::default());
    let build = s.state.kernel.as_ref().expect("hello").build_id.clone();
    assert_eq!(instance_name(None, &s.state), build);
    assert_eq!(instance_name(Some("lab"), &s.state), "lab");
    assert_eq!(instance_name(None, &State::new()), DEFAULT_INSTANCE);
}

/// `GET path` over a fresh connection: status code, headers, body.
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).expect("connect");
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_string(), body.to_string())
}

#[test]
fn the_server_serves_the_published_state_at_metrics_only() {
    let server = Server::start("127.0.0.1:0", Some("srv".into())).expect("start");
    let addr = server.addr();
    let (status, head, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("content-type: {CONTENT_TYPE}"))),
        "{head}"
    );
    assert_eq!(sum(&parse(&body), "lucid_polls_total", &[]), 0.0);

    let g = generate(&Workload {
        tasks: 10,
        polls_per_task: 2,
        ..Workload::default()
    });
    server.publish(&session_of(&g.wire(), Config::default()).finish().state);
    let (_, _, body) = get(addr, "/metrics?x=1");
    let m = parse(&body);
    assert_eq!(sum(&m, "lucid_polls_total", &[("instance", "srv")]), 24.0);

    assert_eq!(get(addr, "/").0, 404);
    assert_eq!(get(addr, "/metrics/x").0, 404);
    drop(server);
    // The accept loop closes its listener as it ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening 2 s after drop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bad_addresses_are_errors_not_panics() {
    let e = Server::start("not an address", None).unwrap_err();
    assert!(matches!(e, MetricsError::Address { .. }), "{e}");
    assert!(e.to_string().starts_with("metrics address `not an address`"), "{e}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let e = Server::start(&addr, None).unwrap_err();
    assert!(matches!(e, MetricsError::Bind { .. }), "{e}");
}

#[test]
fn without_a_name_nothing_is_served_before_the_first_publish() {
    let server = Server::start("127.0.0.1:0", None).expect("start");
    let (status, _, body) = get(server.addr(), "/metrics");
    assert_eq!((status, body.as_str()), (200, ""));
    let g = generate(&Workload {
        tasks: 1,
        ..Workload::default()
    });
    let state = session_of(&g.wire(), Config::default()).finish().state;
    server.publish(&state);
    let m = parse(&get(server.addr(), "/metrics").2);
    let build = state.kernel.as_ref().expect("hello").build_id.clone();
    assert!(sum(&m, "lucid_polls_total", &[("instance", &build)]) > 0.0);
}

/// A state whose exposition is several megabytes: more than the socket buffers of a
/// client that never reads can take.
fn large_state() -> State {
    let mut s = State::new();
    let ev = |message| Item::Event {
        stream: StreamId::new(0, Ring::Task),
        seq: 0,
        event: Event { ts: 1, message },
    };
    for i in 0..64 {
        s.apply(&ev(Message::WasmInstanceCreated(lucid_protocol::WasmInstanceCreated {
            instance: lucid_protocol::InstanceId(i),
            task: lucid_protocol::TaskId(i),
            module: "a-module-with-a-long-name-so-every-label-set-is-long.wasm",
            memory_pages: 1,
            fuel_per_slice: 1,
        })));
        for hostcall in 0..64 {
            s.apply(&ev(Message::WasmHostcalls {
                instance: lucid_protocol::InstanceId(i),
                hostcall,
                calls: 3,
                ticks: 3000,
            }));
        }
    }
    s
}

/// Runs `f` on a thread; its result if it finishes within `secs` seconds.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).ok()
}

#[test]
fn clients_that_never_read_or_never_finish_their_request_stall_nothing() {
    let server = Server::start("127.0.0.1:0", Some("srv".into())).expect("start");
    let addr = server.addr();
    server.publish(&large_state());
    // One connects and sends nothing, one never finishes its headers, and two ask
    // for the metrics and never read the answer.
    let silent = TcpStream::connect(addr).expect("connect");
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").expect("send");
    let deaf: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
            c
        })
        .collect();
    // Another client is served in full meanwhile.
    let (status, _, body) = within(60, move || get(addr, "/metrics")).expect("a stuck client stalled the endpoint");
    assert_eq!(status, 200);
    assert!(
        body.len() > 4 << 20,
        "{} bytes: not enough to fill the stuck clients' buffers",
        body.len()
    );
    assert!(body.ends_with('\n'), "a cut-off answer");
    // Stopping does not wait for them (they would be cut off after REQUEST_DEADLINE).
    within(5, move || drop(server)).expect("stopping waited for a stuck client");
    drop((silent, slow, deaf));
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let server = Server::start("127.0.0.1:0", None).expect("start");
    let addr = server.addr();
    // A head beyond the limit: the connection closes without an answer.
    let mut c = TcpStream::connect(addr).expect("connect");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_REQUEST_BYTES * 2)
    );
    // The server may close before all of it is sent.
    let _ = c.write_all(huge.as_bytes());
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));
    // Not a request line at all.
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(b"hello\r\n\r\n").expect("send");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    // HEAD answers the headers only; other methods are refused.
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(b"HEAD /metrics HTTP/1.1\r\n\r\n").expect("send");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 200") && raw.ends_with("\r\n\r\n"), "{raw}");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(b"POST /metrics HTTP/1.1\r\n\r\n").expect("send");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
}
