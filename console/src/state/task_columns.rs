//! The task map's keyframe form: the tasks' numbers and their two histograms as
//! columns (see [`columns`]), read side by side, names and spawn locations as
//! indices into one table of the distinct strings, and the rest of each task (who
//! woke it, its busy history, its panic, its parked time) as one serde sequence per
//! field.
//!
//! [`columns`]: super::columns

use std::collections::HashMap;

use lucid_protocol::{InstanceId, Outcome, TaskId, TaskKind};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::columns::{Bad, Blob, In, Out};
use super::histogram::Histogram;
use super::history::TaskHistory;
use super::task::{Parked, Task, TaskStatus, WokenByCounts};
use super::task_map::TaskMap;
use super::text::Text;
use crate::time::Ticks;

/// Bytes each task takes in the numbers' blob at least (one per column).
const MIN_TASK_BYTES: usize = 28;

/// What is written: the numbers, the string table, then the nested parts.
type Written<'a> = (
    Blob,
    Vec<&'a str>,
    Vec<&'a WokenByCounts>,
    Vec<&'a TaskHistory>,
    Vec<&'a Option<Box<str>>>,
    Vec<&'a Vec<Parked>>,
);

/// What is read back.
type Read = (
    Blob,
    Vec<Box<str>>,
    Vec<WokenByCounts>,
    Vec<TaskHistory>,
    Vec<Option<Box<str>>>,
    Vec<Vec<Parked>>,
);

/// A status as a number: its rank, which tells every status apart.
fn status_code(s: TaskStatus) -> u64 {
    u64::from(s.rank())
}

fn status_of(code: u64) -> Result<TaskStatus, Bad> {
    Ok(match code {
        0 => TaskStatus::Running,
        1 => TaskStatus::Scheduled,
        2 => TaskStatus::Idle,
        3 => TaskStatus::Completed(Outcome::Ok),
        4 => TaskStatus::Completed(Outcome::Cancelled),
        5 => TaskStatus::Completed(Outcome::Panicked),
        6 => TaskStatus::EndedByRestart,
        _ => return Err("bad task status"),
    })
}

/// The numbers' columns, in the order they are written.
#[derive(Clone, Copy)]
enum Col {
    Key,
    Id,
    Spawned,
    Name,
    Location,
    Kind,
    Boot,
    Status,
    Parent,
    Instance,
    Cpu,
    Completed,
    LastWoken,
    PollStarted,
    LastPollStart,
    ScheduledSince,
    WokenWhileRunning,
    Wakers,
    Polls,
    Wakes,
    SelfWakes,
    WakerClones,
    WakerDrops,
    Busy,
    Scheduled,
    LongPolls,
    Warnings,
    SelfWakeRun,
    Flags,
    PollHist,
    SchedHist,
}

const COLUMNS: usize = Col::SchedHist as usize + 1;

/// One of something per column, indexed by [`Col`].
struct Cols<T>([T; COLUMNS]);

impl<T> std::ops::Index<Col> for Cols<T> {
    type Output = T;
    fn index(&self, c: Col) -> &T {
        &self.0[c as usize]
    }
}

impl<T> std::ops::IndexMut<Col> for Cols<T> {
    fn index_mut(&mut self, c: Col) -> &mut T {
        &mut self.0[c as usize]
    }
}

/// Writes `map` in its keyframe form.
pub(crate) fn serialize<S: Serializer>(map: &TaskMap, s: S) -> Result<S::Ok, S::Error> {
    let mut strings: Vec<&str> = Vec::new();
    let mut string_index: HashMap<&str, u64> = HashMap::new();
    let mut cols = Cols(std::array::from_fn(|_| Out::default()));
    let (mut key_p, mut spawned_p) = (0, 0);
    for (key, t) in map.iter() {
        cols[Col::Key].delta(&mut key_p, key.0);
        cols[Col::Id].relative(key.0, t.id.0);
        cols[Col::Spawned].delta(&mut spawned_p, t.spawned_ts.0);
        for (text, col) in [(&t.name, Col::Name), (&t.location, Col::Location)] {
            let s = text.as_str();
            let i = *string_index.entry(s).or_insert_with(|| {
                strings.push(s);
                strings.len() as u64 - 1
            });
            cols[col].u(i);
        }
        cols[Col::Kind].u(match t.kind {
            TaskKind::Kernel => 0,
            TaskKind::Wasm => 1,
        });
        cols[Col::Boot].u(u64::from(t.boot));
        cols[Col::Status].u(status_code(t.status));
        let spawned = t.spawned_ts.0;
        cols[Col::Parent].opt_from(t.id.0, t.parent.map(|p| p.0));
        cols[Col::Instance].opt_from(0, t.instance.map(|i| i.0));
        cols[Col::Cpu].opt_from(0, t.cpu.map(u64::from));
        cols[Col::Completed].opt_from(spawned, t.completed_ts.map(|c| c.0));
        cols[Col::LastWoken].opt_from(spawned, t.last_woken.map(|c| c.0));
        cols[Col::PollStarted].opt_from(spawned, t.poll_started);
        cols[Col::LastPollStart].opt_from(spawned, t.last_poll_start);
        cols[Col::ScheduledSince].opt_from(spawned, t.scheduled_since);
        cols[Col::WokenWhileRunning].opt_from(spawned, t.woken_while_running);
        cols[Col::Wakers].opt_from(0, t.wakers);
        cols[Col::Polls].u(t.polls);
        cols[Col::Wakes].u(t.wakes);
        cols[Col::SelfWakes].u(t.self_wakes);
        cols[Col::WakerClones].u(t.waker_clones);
        cols[Col::WakerDrops].u(t.waker_drops);
        cols[Col::Busy].u(t.busy_ticks.0);
        cols[Col::Scheduled].u(t.scheduled_ticks.0);
        cols[Col::LongPolls].u(t.long_polls);
        cols[Col::Warnings].u(t.warnings);
        cols[Col::SelfWakeRun].u(t.self_wake_run);
        cols[Col::Flags].u(u64::from(t.storm_warned) | u64::from(t.lost_warned) << 1);
    }
    let polls: Vec<&Histogram> = map.values().map(|t| &t.poll_hist).collect();
    Histogram::write_columns(&polls, &mut cols[Col::PollHist]);
    let scheds: Vec<&Histogram> = map.values().map(|t| &t.sched_hist).collect();
    Histogram::write_columns(&scheds, &mut cols[Col::SchedHist]);
    let mut blob = Out::default();
    blob.u(map.len() as u64);
    blob.columns(cols.0);
    let written: Written<'_> = (
        Blob(blob.into_bytes()),
        strings,
        map.values().map(|t| &t.woken_by).collect(),
        map.values().map(|t| &t.history).collect(),
        map.values().map(|t| &t.panic).collect(),
        map.values().map(|t| &t.parked).collect(),
    );
    written.serialize(s)
}

/// Reads a task map written by [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TaskMap, D::Error> {
    let (blob, strings, woken_by, history, panic, parked) = Read::deserialize(d)?;
    let texts: Vec<Text> = strings.iter().map(|s| Text::from(&**s)).collect();
    let mut r = In::new(&blob.0);
    let n = r.count(MIN_TASK_BYTES).map_err(D::Error::custom)?;
    if [woken_by.len(), history.len(), panic.len(), parked.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err(D::Error::custom("task columns of different lengths"));
    }
    let mut cols = Cols(r.columns::<COLUMNS>().map_err(D::Error::custom)?);
    let poll = Histogram::read_columns(&mut cols[Col::PollHist], n).map_err(D::Error::custom)?;
    let sched = Histogram::read_columns(&mut cols[Col::SchedHist], n).map_err(D::Error::custom)?;
    let mut map = TaskMap::default();
    let nested = woken_by
        .into_iter()
        .zip(history)
        .zip(panic.into_iter().zip(parked))
        .zip(poll.into_iter().zip(sched));
    let (mut key_p, mut spawned_p) = (0, 0);
    for (((woken_by, history), (panic, parked)), (poll_hist, sched_hist)) in nested {
        let t = read_task(&mut cols, &texts, &mut key_p, &mut spawned_p).map_err(D::Error::custom)?;
        let (key, mut t) = t;
        t.woken_by = woken_by;
        t.history = history;
        t.panic = panic;
        t.parked = parked;
        t.poll_hist = poll_hist;
        t.sched_hist = sched_hist;
        if map.insert(key, t).is_some() {
            return Err(D::Error::custom("a task id twice"));
        }
    }
    cols.0.iter().try_for_each(In::finish).map_err(D::Error::custom)?;
    Ok(map)
}

/// The next task's numbers and texts, with its key.
fn read_task(
    cols: &mut Cols<In<'_>>,
    texts: &[Text],
    key_p: &mut u64,
    spawned_p: &mut u64,
) -> Result<(TaskId, Task), Bad> {
    let key = TaskId(cols[Col::Key].delta(key_p)?);
    let id = TaskId(cols[Col::Id].relative(key.0)?);
    let spawned = cols[Col::Spawned].delta(spawned_p)?;
    let mut t = Task::new(id, Ticks(spawned));
    let text = |i: u64| texts.get(i as usize).cloned().ok_or("string index out of range");
    t.name = text(cols[Col::Name].u()?)?;
    t.location = text(cols[Col::Location].u()?)?;
    t.kind = match cols[Col::Kind].u()? {
        0 => TaskKind::Kernel,
        1 => TaskKind::Wasm,
        _ => return Err("bad task kind"),
    };
    t.boot = cols[Col::Boot].u32()?;
    t.status = status_of(cols[Col::Status].u()?)?;
    t.parent = cols[Col::Parent].opt_from(id.0)?.map(TaskId);
    t.instance = cols[Col::Instance].opt_from(0)?.map(InstanceId);
    t.cpu = match cols[Col::Cpu].opt_from(0)? {
        Some(cpu) => Some(u32::try_from(cpu).map_err(|_| "cpu out of range")?),
        None => None,
    };
    t.completed_ts = cols[Col::Completed].opt_from(spawned)?.map(Ticks);
    t.last_woken = cols[Col::LastWoken].opt_from(spawned)?.map(Ticks);
    t.poll_started = cols[Col::PollStarted].opt_from(spawned)?;
    t.last_poll_start = cols[Col::LastPollStart].opt_from(spawned)?;
    t.scheduled_since = cols[Col::ScheduledSince].opt_from(spawned)?;
    t.woken_while_running = cols[Col::WokenWhileRunning].opt_from(spawned)?;
    t.wakers = cols[Col::Wakers].opt_from(0)?;
    t.polls = cols[Col::Polls].u()?;
    t.wakes = cols[Col::Wakes].u()?;
    t.self_wakes = cols[Col::SelfWakes].u()?;
    t.waker_clones = cols[Col::WakerClones].u()?;
    t.waker_drops = cols[Col::WakerDrops].u()?;
    t.busy_ticks = Ticks(cols[Col::Busy].u()?);
    t.scheduled_ticks = Ticks(cols[Col::Scheduled].u()?);
    t.long_polls = cols[Col::LongPolls].u()?;
    t.warnings = cols[Col::Warnings].u()?;
    t.self_wake_run = cols[Col::SelfWakeRun].u()?;
    let flags = cols[Col::Flags].at_most(3)?;
    t.storm_warned = flags & 1 != 0;
    t.lost_warned = flags & 2 != 0;
    Ok((key, t))
}
