//! Prints every event that names one task (its polls, wakes, waits, and the
//! resources it is named a holder of), from a recording, merged across CPUs by
//! timestamp: `cargo run -p lucid-console --example task_events -- FILE TASK`.
//! A debugging aid for the state model's cross-CPU reasoning.

use std::{fs::File, io::BufReader};

use lucid_console::pipeline::Pipeline;
use lucid_console::time::HostNs;
use lucid_protocol::TaskId;
use lucid_protocol::{Item, Message, recording::RecordingReader};

fn names(m: &Message<'_>, task: u64) -> bool {
    if let Message::Holders(h) = m {
        return h.named().any(|t| t.get() == task);
    }
    task_of(m) == Some(task)
}

fn task_of(m: &Message<'_>) -> Option<u64> {
    Some(match *m {
        Message::TaskSpawned(s) => s.task.get(),
        Message::PollStart { task }
        | Message::PollEnd { task, .. }
        | Message::Wake { task, .. }
        | Message::WakerClone { task, .. }
        | Message::WakerDrop { task, .. }
        | Message::TaskCompleted { task, .. }
        | Message::TaskDropped { task }
        | Message::Steal { task, .. } => task.get(),
        Message::WaitBegin(w) => w.task.get(),
        Message::WaitEnd(w) => w.task.get(),
        _ => return None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(task)) = (args.next(), args.next()) else {
        return Err("usage: task_events FILE TASK".into());
    };
    let task: u64 = task.parse()?;
    let mut reader = RecordingReader::new(BufReader::new(File::open(path)?))?;
    let mut pipeline = Pipeline::new();
    let mut state = lucid_console::state::State::default();
    let mut out = Vec::new();
    // The state model sees what the console feeds it: the merge's time-ordered output.
    let mut apply = |item: &Item<'_>| {
        state.apply(item);
        if let Item::Event { stream, event, .. } = *item
            && names(&event.message, task)
        {
            out.push((event.ts, stream.cpu, format!("{:?}", event.message)));
        }
    };
    while let Some(record) = reader.next_chunk()? {
        pipeline.feed(HostNs(record.rx_ns), &record.data, &mut apply);
    }
    pipeline.finish(&mut apply);
    eprintln!("merge: {:?}", pipeline.merge().stats());
    // The warnings kept (the newest) and the first of each kind: a flood of long polls
    // can push an early warning about this task out of the kept ones.
    for w in state.warnings.iter().filter(|w| w.task == Some(TaskId(task))).chain(
        state
            .first_warnings_by_kind
            .values()
            .flatten()
            .filter(|w| w.task == Some(TaskId(task)) && !state.warnings.contains(w)),
    ) {
        out.push((
            w.ts.unwrap_or_default().get(),
            w.cpu.unwrap_or(u32::MAX),
            format!("WARNING {:?}: {}", w.kind, w.message),
        ));
    }
    out.sort();
    for (ts, cpu, m) in out {
        println!("{ts} cpu{cpu} {m}");
    }
    Ok(())
}
