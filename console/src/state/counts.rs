//! Small maps of the per-event path, held as arrays or sorted vectors but seen (in
//! equality, debug output and serialisation) as the `BTreeMap`s they stand for.

use std::collections::BTreeMap;
use std::fmt;

use lucid_protocol::{MessageKind, StreamId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KINDS: usize = MessageKind::ALL.len();

/// Events by kind: a counter per [`MessageKind`]; kinds not seen count as absent.
#[derive(Clone, PartialEq, Eq)]
pub struct KindCounts([u64; KINDS]);

impl Default for KindCounts {
    fn default() -> Self {
        Self([0; KINDS])
    }
}

impl KindCounts {
    /// Events of `kind`, if any.
    #[must_use]
    pub fn get(&self, kind: &MessageKind) -> Option<&u64> {
        self.0.get(*kind as usize).filter(|n| **n > 0)
    }

    /// (kind, events) of the kinds seen, in kind order.
    pub fn iter(&self) -> impl Iterator<Item = (&MessageKind, &u64)> + '_ {
        MessageKind::ALL.iter().zip(&self.0).filter(|(_, n)| **n > 0)
    }

    /// Kinds seen.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.iter().filter(|n| **n > 0).count()
    }

    /// Whether no event was counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one event of `kind`.
    #[inline]
    pub fn add(&mut self, kind: MessageKind) {
        self.0[kind as usize] += 1;
    }
}

impl fmt::Debug for KindCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for KindCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, n) in self.iter() {
            m.serialize_entry(k, n)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for KindCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut c = Self::default();
        for (k, n) in BTreeMap::<MessageKind, u64>::deserialize(d)? {
            c.0[k as usize] = n;
        }
        Ok(c)
    }
}

/// Streams (by wire value: `cpu << 2 | ring`) whose timestamps are held in a table
/// indexed by it; others (CPUs from 256 on) in a sorted vector.
const DENSE_STREAMS: u64 = 1024;

/// The last timestamp per stream. Consecutive events come from different CPUs, so
/// the stream is looked up every event: by its wire value as an index, which orders
/// streams as `StreamId` does.
#[derive(Clone, Default)]
pub(crate) struct LastTs {
    dense: Vec<Option<u64>>,
    /// (wire value, timestamp) of streams from [`DENSE_STREAMS`] on, by wire value.
    sparse: Vec<(u64, u64)>,
}

impl LastTs {
    /// Sets `stream`'s timestamp to `ts`; the previous one, if any.
    #[inline]
    pub(crate) fn replace(&mut self, stream: StreamId, ts: u64) -> Option<u64> {
        let w = stream.to_wire();
        if w < DENSE_STREAMS {
            let i = w as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            return self.dense[i].replace(ts);
        }
        match self.sparse.binary_search_by_key(&w, |&(s, _)| s) {
            Ok(i) => Some(std::mem::replace(&mut self.sparse[i].1, ts)),
            Err(i) => {
                self.sparse.insert(i, (w, ts));
                None
            }
        }
    }

    /// Whether `stream` has a timestamp.
    pub(crate) fn contains(&self, stream: StreamId) -> bool {
        let w = stream.to_wire();
        if w < DENSE_STREAMS {
            return self.dense.get(w as usize).is_some_and(Option::is_some);
        }
        self.sparse.binary_search_by_key(&w, |&(s, _)| s).is_ok()
    }

    /// (stream, timestamp) in stream order.
    fn entries(&self) -> impl Iterator<Item = (StreamId, u64)> + '_ {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i as u64, (*t)?)));
        dense
            .chain(self.sparse.iter().copied())
            .filter_map(|(w, t)| Some((StreamId::from_wire(w).ok()?, t)))
    }
}

impl PartialEq for LastTs {
    fn eq(&self, other: &Self) -> bool {
        self.entries().eq(other.entries())
    }
}

impl Eq for LastTs {}

impl fmt::Debug for LastTs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

impl Serialize for LastTs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.entries().count()))?;
        for (k, t) in self.entries() {
            m.serialize_entry(&k, &t)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for LastTs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut l = Self::default();
        for (k, t) in BTreeMap::<StreamId, u64>::deserialize(d)? {
            l.replace(k, t);
        }
        Ok(l)
    }
}
