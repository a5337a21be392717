//! The resource hooks: primitives' creation and drop, and the waits tasks begin
//! and end on them (reported by the executor's `resource` module only on the path
//! that waits), as trace events.

use core::panic::Location;

use lucid_executor::resource::{ResourceHooks, ResourceKind, WaitOp, WaitOutcome};
use lucid_protocol::{self as proto, Message};

use super::{emit, sched_current_task, traced, wire_task};

/// Longest resource name the trace carries (names are `&'static str` literals in
/// practice; the cut keeps any record inside a frame).
const MAX_NAME: usize = 64;

/// The hooks instance to install with `lucid_executor::resource::install`.
pub static HOOKS: &dyn ResourceHooks = &ResourceTrace;

/// Emits resource and wait events.
#[derive(Debug)]
pub struct ResourceTrace;

fn kind(kind: ResourceKind) -> proto::ResourceKind {
    match kind {
        ResourceKind::Channel => proto::ResourceKind::Channel,
        ResourceKind::Oneshot => proto::ResourceKind::Oneshot,
        ResourceKind::Semaphore => proto::ResourceKind::Semaphore,
        ResourceKind::Mutex => proto::ResourceKind::Mutex,
        ResourceKind::WaitQueue => proto::ResourceKind::WaitQueue,
        ResourceKind::Timer => proto::ResourceKind::Timer,
        ResourceKind::Join => proto::ResourceKind::Join,
        ResourceKind::WasmChannel => proto::ResourceKind::WasmChannel,
    }
}

fn op(op: WaitOp) -> proto::WaitOp {
    match op {
        WaitOp::Recv => proto::WaitOp::Recv,
        WaitOp::Send => proto::WaitOp::Send,
        WaitOp::Acquire => proto::WaitOp::Acquire,
        WaitOp::Lock => proto::WaitOp::Lock,
        WaitOp::Wait => proto::WaitOp::Wait,
        WaitOp::Sleep => proto::WaitOp::Sleep,
        WaitOp::Join => proto::WaitOp::Join,
    }
}

fn outcome(outcome: WaitOutcome) -> proto::WaitOutcome {
    match outcome {
        WaitOutcome::Ready => proto::WaitOutcome::Ready,
        WaitOutcome::Cancelled => proto::WaitOutcome::Cancelled,
        WaitOutcome::TimedOut => proto::WaitOutcome::TimedOut,
    }
}

impl ResourceHooks for ResourceTrace {
    fn on_created(
        &self,
        id: u64,
        resource_kind: ResourceKind,
        name: &str,
        location: &'static Location<'static>,
        capacity: Option<u64>,
    ) {
        let mut end = name.len().min(MAX_NAME);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::ResourceCreated(proto::ResourceCreated {
                    id: proto::ResourceId(id),
                    kind: kind(resource_kind),
                    name: &name[..end],
                    location: proto::Location {
                        file: location.file(),
                        line: location.line(),
                        column: location.column(),
                    },
                    capacity,
                }),
            )
        });
    }

    fn on_dropped(&self, id: u64) {
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::ResourceDropped(proto::ResourceDropped {
                    id: proto::ResourceId(id),
                }),
            )
        });
    }

    fn on_wait_begin(&self, id: u64, wait_op: WaitOp) -> Option<u64> {
        let task = sched_current_task().filter(|&t| traced(t))?;
        let task = wire_task(task);
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::WaitBegin(proto::WaitBegin {
                    task,
                    resource: proto::ResourceId(id),
                    op: op(wait_op),
                }),
            )
        });
        Some(task.get())
    }

    fn on_wait_end(&self, task: u64, id: u64, wait_outcome: WaitOutcome) {
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::WaitEnd(proto::WaitEnd {
                    task: proto::TaskId(task),
                    resource: proto::ResourceId(id),
                    outcome: outcome(wait_outcome),
                }),
            )
        });
    }
}
