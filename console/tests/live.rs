//! Runs `lucid live --headless-for` against a unix-socket server in the test that
//! streams a generated workload, and compares its JSON with `lucid stats --json` on
//! the same bytes as a recording.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{lucid, workload};
use lucid_protocol::{Decoder, Item, MessageKind, Ring};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("live-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "lucid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn stats_json(path: &std::path::Path) -> Value {
    json(&lucid(&["stats", path.to_str().unwrap(), "--json"]))
}

/// Streams `parts` to one client each (in order), in small pieces, then reads what
/// the client sends until it goes away; returns the bytes every client sent.
fn serve(listener: UnixListener, parts: Vec<Vec<u8>>) -> JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut received = Vec::new();
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let (mut conn, _) = listener.accept().expect("accept");
            for piece in part.chunks(1500) {
                conn.write_all(piece).expect("write");
                std::thread::sleep(Duration::from_micros(200));
            }
            received.push(if i == last {
                read_until_closed(conn)
            } else {
                read_some(conn)
            });
        }
        received
    })
}

fn read_until_closed(mut conn: UnixStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    got
}

fn read_some(mut conn: UnixStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 256];
    let n = conn.read(&mut buf).unwrap_or(0);
    buf[..n].to_vec()
}

fn host_requests(bytes: &[u8]) -> Vec<MessageKind> {
    let mut kinds = Vec::new();
    Decoder::new().feed(bytes, |item| {
        if let Item::Event { stream, event, .. } = item
            && stream.ring == Ring::Host
        {
            kinds.push(event.message.kind());
        }
    });
    kinds
}

#[test]
fn headless_live_json_equals_stats_of_the_same_bytes() {
    let g = workload(7);
    let sock = tmp("a.sock");
    let server = serve(UnixListener::bind(&sock).unwrap(), vec![g.wire()]);
    let rec = tmp("a-rec.lucid");
    let out = lucid(&[
        "live",
        "--socket",
        sock.to_str().unwrap(),
        "--headless-for",
        "2",
        "--record",
        rec.to_str().unwrap(),
    ]);
    let live = json(&out);
    let sent_back = server.join().unwrap();
    assert_eq!(host_requests(&sent_back[0]), [MessageKind::RequestSnapshot]);

    let file = tmp("a.lucid");
    std::fs::write(&file, g.recording(4096)).unwrap();
    assert_eq!(live, stats_json(&file));
    assert_eq!(live, stats_json(&rec));
    assert_eq!(live["events"], g.events());
    assert_eq!(live["tasks_completed"], 303);
    assert_eq!(live["dropped_events"], 17);
    for p in [sock, rec, file] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_second_ingest_thread_prints_what_one_prints() {
    let g = workload(9);
    let sock = tmp("two.sock");
    let server = serve(UnixListener::bind(&sock).unwrap(), vec![g.wire()]);
    let out = lucid(&[
        "live",
        "--socket",
        sock.to_str().unwrap(),
        "--ingest-threads",
        "2",
        "--headless-for",
        "2",
    ]);
    let live = json(&out);
    server.join().unwrap();
    let file = tmp("two.lucid");
    std::fs::write(&file, g.recording(4096)).unwrap();
    assert_eq!(live, stats_json(&file));
    assert_eq!(live["events"], g.events());
    let bad = lucid(&["live", "--stdin", "--ingest-threads", "3"]);
    assert!(!bad.status.success(), "3 ingest threads were accepted");
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("--ingest-threads"), "{said}");
    for p in [sock, file] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn tcp_works_like_the_unix_socket() {
    let g = workload(7);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let wire = g.wire();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(&wire).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        got
    });
    let live = json(&lucid(&["live", "--tcp", &addr, "--headless-for", "1.5"]));
    assert_eq!(host_requests(&server.join().unwrap()), [MessageKind::RequestSnapshot]);
    let file = tmp("tcp.lucid");
    std::fs::write(&file, g.recording(4096)).unwrap();
    assert_eq!(live, stats_json(&file));
    let _ = std::fs::remove_file(file);
}

#[test]
fn garbage_and_a_vanished_peer_are_survived_with_a_reconnect() {
    let g = workload(7);
    let half = g.frames.len() / 2;
    let mut first = b"\x13\x37 noise on the line \xff\x00".to_vec();
    first.extend(g.frames[..half].concat());
    let second = g.frames[half..].concat();
    let sock = tmp("b.sock");
    let server = serve(UnixListener::bind(&sock).unwrap(), vec![first, second]);
    let rec = tmp("b-rec.lucid");
    let out = lucid(&[
        "live",
        "--socket",
        sock.to_str().unwrap(),
        "--headless-for",
        "2.5",
        "--record",
        rec.to_str().unwrap(),
    ]);
    let live = json(&out);
    let sent_back = server.join().unwrap();
    // One snapshot request per connection.
    assert!(
        sent_back
            .iter()
            .all(|b| host_requests(b) == [MessageKind::RequestSnapshot])
    );
    assert_eq!(live["events"], g.events());
    assert_eq!(live["tasks"], 303);
    assert_eq!(live["sequence_gaps"], 0);
    assert_eq!(live["malformed_frames"], 1);
    assert_eq!(live["warnings"].as_array().unwrap().len(), 1);
    assert_eq!(live, stats_json(&rec));
    for p in [sock, rec] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_missing_socket_is_retried_without_failing() {
    let sock = tmp("missing.sock");
    let out = lucid(&["live", "--socket", sock.to_str().unwrap(), "--headless-for", "0.3"]);
    let live = json(&out);
    assert_eq!(live["events"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to unix:"), "{err}");
}

#[test]
fn stdin_is_read_to_its_end() {
    let g = workload(7);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lucid"))
        .args(["live", "--stdin", "--headless-for", "10"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&g.wire()).unwrap();
    drop(stdin);
    let start = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    // It stops when the input ends rather than waiting out the 10 s.
    assert!(start.elapsed() < Duration::from_secs(8));
    let live = json(&out);
    assert_eq!(live["events"], g.events());
}

#[test]
fn a_serial_pty_works_like_a_socket() {
    let g = workload(7);
    let (mut master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal pair");
    let path = serialport::SerialPort::name(&slave).expect("the pty has a path");
    let child = Command::new(env!("CARGO_BIN_EXE_lucid"))
        .args(["live", "--serial", &path, "--baud", "115200", "--headless-for", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wire = g.wire();
    // Written from another thread: a console that failed to open the device would
    // block the writer, and the assertions below should report that, not hang.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        serialport::SerialPort::set_timeout(&mut master, Duration::from_secs(5)).unwrap();
        master.write_all(&wire).unwrap();
        let mut back = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        back
    });
    let live = json(&child.wait_with_output().unwrap());
    drop(slave);
    let file = tmp("serial.lucid");
    std::fs::write(&file, g.recording(4096)).unwrap();
    assert_eq!(live, stats_json(&file));
    assert_eq!(host_requests(&writer.join().unwrap()), [MessageKind::RequestSnapshot]);
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_bad_metrics_address_is_one_line_and_creates_nothing() {
    let rec = tmp("bad-metrics.lucid");
    let out = lucid(&[
        "live",
        "--stdin",
        "--headless-for",
        "0.1",
        "--metrics",
        "localhost",
        "--record",
        rec.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lucid: metrics address `localhost`"), "{err}");
    assert!(!rec.exists());
}

/// `GET /metrics` from `addr`: the body of a 200 answer.
fn scrape(addr: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(c, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_string()
}

/// Sum of the samples of `name` in a text exposition.
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn headless_live_serves_its_state_as_metrics_while_it_runs() {
    let g = workload(7);
    let sock = tmp("m.sock");
    let server = serve(UnixListener::bind(&sock).unwrap(), vec![g.wire()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lucid"))
        .args(["live", "--socket", sock.to_str().unwrap(), "--headless-for", "4"])
        .args(["--metrics", "127.0.0.1:0", "--instance", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("lucid: metrics at http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    // The stream stays open: what the merge holds goes out once the link is quiet.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let text = loop {
        let text = scrape(&addr);
        if metric_sum(&text, "lucid_events_total") == g.events() || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let live = json(&out);
    server.join().unwrap();
    assert_eq!(metric_sum(&text, "lucid_events_total"), g.events());
    assert_eq!(
        metric_sum(&text, "lucid_tasks_spawned_total"),
        live["tasks"].as_u64().unwrap()
    );
    assert_eq!(metric_sum(&text, "lucid_dropped_events_total"), 17);
    assert!(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.contains("{instance=\"t\""))
    );
    let _ = std::fs::remove_file(sock);
}
