//! Profiling samples (`Sample` messages): collected from a recording, symbolized, and
//! summed into the hottest functions (self and total), per task and per CPU, and the
//! share of samples in tasks, the scheduler, idle and interrupts; also folded stacks
//! rooted at the task.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use lucid_protocol::{Item, Message, SampleContext, TaskId};
use serde::Serialize;

use crate::profile::{Tasks, executor_event};
use crate::state::{State, WasmCode};
use crate::symbols::{Resolver, Symbolizer};

/// Samples per context name.
type ContextCounts = BTreeMap<&'static str, u64>;

/// One sample as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Taken {
    cpu: u32,
    context: SampleContext,
    task: Option<TaskId>,
    /// The interrupted pc, then the return addresses, innermost first.
    addrs: Vec<u64>,
}

/// The samples of a recording (or a window of it).
#[derive(Debug, Clone)]
pub struct Samples {
    tasks: Tasks,
    taken: Vec<Taken>,
    /// Where the wasm modules' functions lie.
    wasm: WasmCode,
}

impl Samples {
    /// Starts from the state at the window's start (for task names).
    #[must_use]
    pub fn new(state: &State) -> Self {
        Self {
            tasks: Tasks::from_state(state),
            taken: Vec::new(),
            wasm: state.wasm_code.clone(),
        }
    }

    /// Takes one item.
    pub fn observe(&mut self, item: &Item<'_>) {
        if let Item::Event { event, .. } = item
            && let Message::WasmFunction(f) = &event.message
        {
            self.wasm.insert(f);
            return;
        }
        let Some((cpu, _ts, m)) = executor_event(item) else {
            return;
        };
        self.tasks.observe(m);
        if let Message::Sample(s) = m {
            let mut addrs = Vec::with_capacity(1 + s.frames.len());
            addrs.push(s.pc);
            addrs.extend(s.frames.iter());
            self.taken.push(Taken {
                cpu,
                context: s.context,
                task: s.task,
                addrs,
            });
        }
    }

    /// Whether no sample was seen.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }

    /// Names of each sample's frames, outermost first (the pc's function last).
    /// A return address is looked up one byte back, inside the call it returns from.
    fn resolved<'s>(&'s self, symbols: &Symbolizer) -> impl Iterator<Item = (&'s Taken, Vec<String>)> {
        let resolver = self.resolver(symbols);
        let mut cache: HashMap<u64, String> = HashMap::new();
        let mut name = move |addr: u64| cache.entry(addr).or_insert_with(|| resolver.name(addr)).clone();
        self.taken
            .iter()
            .map(move |t| {
                let mut names: Vec<String> = t
                    .addrs
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| name(if i == 0 { a } else { a.wrapping_sub(1) }))
                    .collect();
                names.reverse();
                (t, names)
            })
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Names addresses from the wasm code map, then the kernel's symbols.
    fn resolver<'s>(&'s self, symbols: &'s Symbolizer) -> Resolver<'s> {
        Resolver {
            kernel: symbols,
            wasm: &self.wasm,
        }
    }

    /// The root frame of a sample's folded stack: its task's name, or its context.
    fn root(&self, t: &Taken) -> String {
        match (t.context, t.task) {
            (SampleContext::Task, Some(task)) => self.tasks.get(task).name.replace(';', ","),
            (c, _) => format!("[{}]", c.name()),
        }
    }

    /// Folded stacks `root;outer;…;inner count`, sorted.
    #[must_use]
    pub fn folded(&self, symbols: &Symbolizer) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (t, names) in self.resolved(symbols) {
            let mut line = self.root(t);
            for n in names {
                line.push(';');
                line.push_str(&n.replace(';', ","));
            }
            *out.entry(line).or_insert(0) += 1;
        }
        out
    }

    /// The report, listing `top` functions per table.
    #[must_use]
    pub fn report(&self, symbols: &Symbolizer, top: usize) -> SampleReport {
        let total = self.taken.len() as u64;
        let mut contexts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut self_counts: HashMap<String, u64> = HashMap::new();
        let mut total_counts: HashMap<String, u64> = HashMap::new();
        let mut per_task: BTreeMap<TaskId, HashMap<String, u64>> = BTreeMap::new();
        let mut per_cpu: BTreeMap<u32, (ContextCounts, HashMap<String, u64>)> = BTreeMap::new();
        let mut unresolved = 0;
        let resolver = self.resolver(symbols);
        // Per function, its sampled pcs: its line is the most sampled one's.
        let mut leaf_pcs: HashMap<String, HashMap<u64, u64>> = HashMap::new();
        for (t, names) in self.resolved(symbols) {
            let leaf = names.last().cloned().unwrap_or_default();
            if resolver.function(t.addrs[0]).is_none() {
                unresolved += 1;
            }
            *leaf_pcs.entry(leaf.clone()).or_default().entry(t.addrs[0]).or_default() += 1;
            *contexts.entry(t.context.name()).or_default() += 1;
            *self_counts.entry(leaf.clone()).or_default() += 1;
            let mut seen: Vec<&String> = Vec::new();
            for n in &names {
                if !seen.contains(&n) {
                    seen.push(n);
                    *total_counts.entry(n.clone()).or_default() += 1;
                }
            }
            if let (SampleContext::Task, Some(task)) = (t.context, t.task) {
                *per_task.entry(task).or_default().entry(leaf.clone()).or_default() += 1;
            }
            let cpu = per_cpu.entry(t.cpu).or_default();
            *cpu.0.entry(t.context.name()).or_default() += 1;
            *cpu.1.entry(leaf).or_default() += 1;
        }
        let mut tasks: Vec<TaskSamples> = per_task
            .into_iter()
            .map(|(task, counts)| {
                let samples = counts.values().sum();
                TaskSamples {
                    task: task.get(),
                    name: self.tasks.get(task).name,
                    samples,
                    top_self: hottest(counts, samples, top),
                }
            })
            .collect();
        tasks.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.task.cmp(&b.task)));
        tasks.truncate(top);
        let mut report = SampleReport {
            samples: total,
            unresolved_pcs: unresolved,
            contexts: shares(&contexts, total),
            top_self: hottest(self_counts, total, top),
            top_total: hottest(total_counts, total, top),
            tasks,
            cpus: per_cpu
                .into_iter()
                .map(|(cpu, (contexts, counts))| {
                    let samples = contexts.values().sum();
                    CpuSamples {
                        cpu,
                        samples,
                        contexts: shares(&contexts, samples),
                        top_self: hottest(counts, samples, top.min(5)),
                    }
                })
                .collect(),
        };
        report.locate(|function| {
            let pcs = leaf_pcs.get(function)?;
            let (&pc, _) = pcs.iter().max_by_key(|&(&pc, &n)| (n, std::cmp::Reverse(pc)))?;
            symbols.location(pc)
        });
        report
    }
}

impl crate::window::Observer for Samples {
    fn observe(&mut self, item: &Item<'_>) {
        Samples::observe(self, item);
    }
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

fn shares(counts: &BTreeMap<&'static str, u64>, total: u64) -> Vec<ContextShare> {
    SampleContext::ALL
        .iter()
        .map(|c| {
            let samples = counts.get(c.name()).copied().unwrap_or(0);
            ContextShare {
                context: c.name(),
                samples,
                share: share(samples, total),
            }
        })
        .collect()
}

fn hottest(counts: HashMap<String, u64>, total: u64, top: usize) -> Vec<FunctionSamples> {
    let mut v: Vec<FunctionSamples> = counts
        .into_iter()
        .map(|(function, samples)| FunctionSamples {
            function,
            location: None,
            samples,
            share: share(samples, total),
        })
        .collect();
    v.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.function.cmp(&b.function)));
    v.truncate(top);
    v
}

/// Samples in one context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextShare {
    /// `task`, `scheduler`, `idle` or `interrupt`.
    pub context: &'static str,
    /// Samples.
    pub samples: u64,
    /// Of all samples in the table's scope.
    pub share: f64,
}

/// Samples in one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionSamples {
    /// Demangled name, or the address in hex.
    pub function: String,
    /// `file:line` of its most sampled pc, from the kernel ELF's line tables (kernel
    /// code only; absent for a function never sampled as the pc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Samples.
    pub samples: u64,
    /// Of all samples in the table's scope.
    pub share: f64,
}

/// One task's samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSamples {
    /// Task id.
    pub task: u64,
    /// Name.
    pub name: String,
    /// Samples taken while it was polled.
    pub samples: u64,
    /// Its hottest functions by self samples.
    pub top_self: Vec<FunctionSamples>,
}

/// One CPU's samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuSamples {
    /// CPU.
    pub cpu: u32,
    /// Samples.
    pub samples: u64,
    /// By context.
    pub contexts: Vec<ContextShare>,
    /// Hottest functions by self samples.
    pub top_self: Vec<FunctionSamples>,
}

/// `lucid profile --samples`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleReport {
    /// Samples in the window.
    pub samples: u64,
    /// Samples whose pc no symbol covers (shown as addresses).
    pub unresolved_pcs: u64,
    /// Share in task polls, the scheduler, idle and interrupts.
    pub contexts: Vec<ContextShare>,
    /// Hottest functions by self samples (the pc's function).
    pub top_self: Vec<FunctionSamples>,
    /// Hottest functions by total samples (anywhere on the stack).
    pub top_total: Vec<FunctionSamples>,
    /// Tasks with the most samples.
    pub tasks: Vec<TaskSamples>,
    /// Per CPU.
    pub cpus: Vec<CpuSamples>,
}

/// ` (file:line)` of a function, when known.
fn at(f: &FunctionSamples) -> String {
    f.location.as_ref().map_or_else(String::new, |l| format!(" ({l})"))
}

fn pct(share: f64) -> String {
    format!("{:5.1}%", share * 100.0)
}

impl SampleReport {
    /// Fills in every listed function's location from `of` (asked once per name).
    fn locate(&mut self, of: impl Fn(&str) -> Option<String>) {
        let mut cache: HashMap<String, Option<String>> = HashMap::new();
        let tables = self
            .top_self
            .iter_mut()
            .chain(self.top_total.iter_mut())
            .chain(self.tasks.iter_mut().flat_map(|t| t.top_self.iter_mut()))
            .chain(self.cpus.iter_mut().flat_map(|c| c.top_self.iter_mut()));
        for f in tables {
            f.location = cache
                .entry(f.function.clone())
                .or_insert_with(|| of(&f.function))
                .clone();
        }
    }

    /// The report as text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "samples: {} ({} with an unresolved pc)",
            self.samples, self.unresolved_pcs
        );
        let ctx: Vec<String> = self
            .contexts
            .iter()
            .map(|c| format!("{} {}", c.context, pct(c.share).trim()))
            .collect();
        let _ = writeln!(s, "where: {}", ctx.join(", "));
        for (title, rows) in [("hottest (self)", &self.top_self), ("hottest (total)", &self.top_total)] {
            let _ = writeln!(s, "\n{title}:");
            for f in rows {
                let _ = writeln!(s, "  {} {:>7}  {}{}", pct(f.share), f.samples, f.function, at(f));
            }
        }
        let _ = writeln!(s, "\nper task:");
        for t in &self.tasks {
            let _ = writeln!(s, "  task {} {} — {} samples", t.task, t.name, t.samples);
            for f in t.top_self.iter().take(5) {
                let _ = writeln!(s, "    {} {:>7}  {}{}", pct(f.share), f.samples, f.function, at(f));
            }
        }
        let _ = writeln!(s, "\nper CPU:");
        for c in &self.cpus {
            let ctx: Vec<String> = c
                .contexts
                .iter()
                .map(|x| format!("{} {}", x.context, pct(x.share).trim()))
                .collect();
            let _ = writeln!(s, "  cpu {} — {} samples: {}", c.cpu, c.samples, ctx.join(", "));
            for f in c.top_self.iter().take(3) {
                let _ = writeln!(s, "    {} {:>7}  {}", pct(f.share), f.samples, f.function);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use lucid_protocol::{Event, Frames, Ring, Sample, StreamId};

    use super::*;

    fn sample(cpu: u32, context: SampleContext, task: Option<u64>, pc: u64, frames: &[u64]) -> Message<'_> {
        let _ = cpu;
        Message::Sample(Sample {
            context,
            task: task.map(TaskId),
            pc,
            frames: Frames::Slice(frames),
        })
    }

    fn feed(s: &mut Samples, cpu: u32, m: Message<'_>) {
        s.observe(&Item::Event {
            stream: StreamId::new(cpu, Ring::Interrupt),
            seq: 0,
            event: Event { ts: 1, message: m },
        });
    }

    fn symbols() -> Symbolizer {
        Symbolizer::from_functions(vec![
            (0x1000, 0x100, "spin_loop".into()),
            (0x2000, 0x100, "task_body".into()),
            (0x3000, 0x100, "poll".into()),
            (0x4000, 0x100, "idle".into()),
        ])
    }

    #[test]
    fn hottest_functions_tasks_and_contexts_are_counted() {
        let mut s = Samples::new(&State::default());
        for _ in 0..3 {
            feed(
                &mut s,
                0,
                sample(0, SampleContext::Task, Some(7), 0x1010, &[0x2050, 0x3050]),
            );
        }
        feed(&mut s, 0, sample(0, SampleContext::Task, Some(7), 0x2010, &[0x3050]));
        feed(&mut s, 1, sample(1, SampleContext::Idle, None, 0x4010, &[]));
        feed(&mut s, 1, sample(1, SampleContext::Scheduler, None, 0x9999, &[0x3050]));
        let r = s.report(&symbols(), 10);
        assert_eq!(r.samples, 6);
        assert_eq!(r.unresolved_pcs, 1);
        assert_eq!(r.top_self[0].function, "spin_loop");
        assert_eq!(r.top_self[0].samples, 3);
        assert!(
            r.top_self.iter().any(|f| f.function == "0x9999"),
            "unresolved pc kept as hex"
        );
        assert_eq!(r.top_total[0].function, "poll");
        assert_eq!(r.top_total[0].samples, 5);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!((r.tasks[0].task, r.tasks[0].samples), (7, 4));
        assert_eq!(r.tasks[0].top_self[0].function, "spin_loop");
        let ctx: Vec<(&str, u64)> = r.contexts.iter().map(|c| (c.context, c.samples)).collect();
        assert_eq!(ctx, [("task", 4), ("scheduler", 1), ("idle", 1), ("interrupt", 0)]);
        assert_eq!(r.cpus.len(), 2);
        assert_eq!(r.cpus[1].samples, 2);
    }

    #[test]
    fn folded_stacks_start_at_the_task_and_end_at_the_pc() {
        let mut s = Samples::new(&State::default());
        feed(
            &mut s,
            0,
            sample(0, SampleContext::Task, Some(7), 0x1010, &[0x2050, 0x3050]),
        );
        feed(
            &mut s,
            0,
            sample(0, SampleContext::Task, Some(7), 0x1010, &[0x2050, 0x3050]),
        );
        feed(&mut s, 1, sample(1, SampleContext::Idle, None, 0x4010, &[]));
        let folded = s.folded(&symbols());
        let lines: Vec<(&str, u64)> = folded.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(lines, [("[idle];idle", 1), ("task 7;poll;task_body;spin_loop", 2)]);
    }

    #[test]
    fn samples_in_guest_code_name_module_and_function_from_the_code_map() {
        let mut s = Samples::new(&State::default());
        s.observe(&Item::Event {
            stream: StreamId::new(0, Ring::Control),
            seq: 0,
            event: Event {
                ts: 1,
                message: Message::WasmFunction(lucid_protocol::WasmFunction {
                    start: 0x8000,
                    len: 0x80,
                    module: "hasher",
                    index: 1,
                    name: "hash",
                }),
            },
        });
        for pc in [0x8010, 0x807f, 0x8080] {
            feed(&mut s, 0, sample(0, SampleContext::Task, Some(7), pc, &[0x2050]));
        }
        let r = s.report(&symbols(), 10);
        assert_eq!(r.top_self[0].function, "hasher!hash");
        assert_eq!(r.unresolved_pcs, 1, "past the function's end is unresolved");
        let folded = s.folded(&symbols());
        assert_eq!(folded.get("task 7;task_body;hasher!hash"), Some(&2), "{folded:?}");
    }
}
