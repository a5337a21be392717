//! The keyframe index of a recording: a side file `FILE.lucid.idx` (format in the
//! protocol README) holding serialised (postcard, then LZ4) player states at record
//! boundaries, so a seek restores the nearest keyframe and plays at most one keyframe
//! interval.
//!
//! The index is a cache: it is written to a fresh temporary name and renamed when
//! complete, checked against the recording (length, checksums of its first and last
//! bytes, and its file identity or else a checksum of every block), the console build
//! and the state configuration on open, and rebuilt when anything does not match or
//! does not decode. Blocks not checked on open are checked before a keyframe that
//! depends on them is used ([`Index::verify_through`]). Where it lives: see [`place`].
//! Its contents are untrusted input: every length and offset is checked before use.
//!
//! [`place`]: super::place

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};

use lucid_protocol::recording::Header;
use lucid_protocol::testdata::{Workload, generate};
use serde::{Deserialize, Serialize};

use super::ReplayError;
use super::blocks::{BlockSums, Identity, Verifier, identity};
use super::catch_up::{self, Released};
use super::place::{self, create_temporary, open_index};
use super::player::{Applied, KeyframeHead, KeyframeIn, Player};
use crate::pipeline::{OwnedItem, Pipeline};
use crate::state::{Config, State};
use crate::stats::Damage;
use crate::time::{Clock, HostNs};

/// First bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"LUCIDIDX";
/// Last bytes of a complete index file.
pub const INDEX_END: [u8; 8] = *b"LUCIDEND";
/// Index format version; bump it whenever the state model's serialised form changes,
/// or what the merge and state model make of the same input.
pub const INDEX_VERSION: u16 = 14;
const HEADER_LEN: u64 = 16;
const FOOTER_LEN: u64 = 16;
/// Largest table read back (a damaged length must not drive an allocation).
const MAX_TABLE_LEN: u64 = 256 << 20;
/// Largest keyframe read back.
const MAX_KEYFRAME_LEN: u64 = 1 << 30;
/// Recording bytes between two progress reports while building.
const PROGRESS_EVERY: u64 = 16 << 20;
/// Bytes of the recording checksummed at each end to recognise it.
const FINGERPRINT_LEN: u64 = 64 << 10;

/// When to take keyframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexParams {
    /// A keyframe after at most this many items...
    pub every_items: u64,
    /// ...or this much trace time (nanoseconds at the kernel's TSC rate)...
    pub every_ns: u64,
    /// ...but never closer, in recording bytes, than this percentage of the previous
    /// keyframe's (compressed) size: at 100 the index stays about the size of the
    /// recording at most; lower is faster seeking for a larger index.
    pub min_spacing_percent: u64,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self {
            every_items: 100_000,
            every_ns: 1_000_000_000,
            min_spacing_percent: 100,
        }
    }
}

impl IndexParams {
    /// The default keyframe times, spaced so that the index stays at about `percent`
    /// (1–100) of the recording: keyframes `100 / percent` times their own size apart,
    /// so a seek plays up to that many times further than with the default (100).
    #[must_use]
    pub fn with_index_percent(percent: u8) -> Self {
        Self {
            min_spacing_percent: 10_000 / u64::from(percent.clamp(1, 100)),
            ..Self::default()
        }
    }
}

/// What identifies the recording an index belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    len: u64,
    head_crc: u32,
    tail_crc: u32,
}

/// One keyframe's entry in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Items applied at the keyframe.
    pub items: u64,
    /// Largest event timestamp applied at the keyframe.
    pub max_ts: Option<u64>,
    /// Offset of the next record in the recording.
    pub record_offset: u64,
    blob_offset: u64,
    blob_len: u64,
    blob_crc: u32,
    /// Length of the keyframe before compression.
    raw_len: u64,
}

/// What a whole pass over the recording found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Items in the recording.
    pub items: u64,
    /// Smallest and largest task or interrupt event timestamp.
    pub ts_range: Option<(u64, u64)>,
    /// TSC ticks per second (the kernel's, or the state model's default).
    pub tsc_hz: u64,
    /// Where reading stopped early.
    pub damage: Option<Damage>,
    /// Item positions of the warnings (the warning's item included), oldest first.
    pub warnings: Vec<u64>,
}

impl Summary {
    /// The recording's TSC rate.
    #[must_use]
    pub fn clock(&self) -> Clock {
        Clock::new(self.tsc_hz)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Table {
    version: u16,
    console: String,
    schema: u32,
    fingerprint: Fingerprint,
    /// The recording's file identity when the index was built.
    identity: Option<Identity>,
    /// Checksums of the recording's blocks.
    blocks: BlockSums,
    config: Config,
    params: IndexParams,
    summary: Summary,
    entries: Vec<Entry>,
}

/// Where the keyframes are.
#[derive(Debug)]
enum Store {
    File(File),
    Memory(Vec<u8>),
}

/// An open index.
#[derive(Debug)]
pub struct Index {
    table: Table,
    store: Store,
    /// How the index was obtained, for the status line.
    pub origin: String,
    /// Checks the recording's blocks while the index is in use; `None` once they
    /// were all checked on open.
    verifier: Option<Verifier>,
    /// Why an existing index was not used, when that is worth a line to the user.
    notice: Option<String>,
}

/// The recording changed after the index was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed(pub String);

/// The recording's name in the private index directory: its fingerprint and the
/// checksum of its absolute path.
fn private_name(recording: &Path, fp: &Fingerprint) -> String {
    let abs = std::path::absolute(recording).unwrap_or_else(|_| recording.to_path_buf());
    format!(
        "{:08x}-{:016x}-{:08x}{:08x}.idx",
        crc32fast::hash(abs.as_os_str().as_encoded_bytes()),
        fp.len,
        fp.head_crc,
        fp.tail_crc
    )
}

fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; FINGERPRINT_LEN.min(len) as usize];
    f.read_exact(&mut buf)?;
    let head_crc = crc32fast::hash(&buf);
    f.seek(SeekFrom::Start(len - buf.len() as u64))?;
    f.read_exact(&mut buf)?;
    Ok(Fingerprint {
        len,
        head_crc,
        tail_crc: crc32fast::hash(&buf),
    })
}

impl Index {
    /// The index of the recording at `path`: the side file if it matches, else a
    /// new one (written next to the recording when possible).
    /// `progress(bytes read, recording length)` is called now and then while building.
    pub fn open_or_build(
        path: &Path,
        config: Config,
        params: IndexParams,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self, ReplayError> {
        let fp = fingerprint(path).map_err(read_error(path))?;
        let places = place::places(path, &private_name(path, &fp));
        let mut why = "no index yet".to_string();
        for (i, side) in places.iter().enumerate() {
            match Self::load(side, path, &fp, config, params) {
                Ok(index) => return Ok(index),
                // The first place's reason is the one worth telling.
                Err(e) if i == 0 => why = e,
                Err(_) => {}
            }
        }
        let mut index = Self::build(path, config, params, fp, &places, progress)?;
        index.origin = format!("{} ({why})", index.origin);
        if why != "no index yet" {
            index.notice = Some(format!("{why}: index rebuilt"));
        }
        Ok(index)
    }

    /// A new index of the recording at `path`, replacing the one in use (whose
    /// recording changed): `why` says so.
    pub(crate) fn rebuild(path: &Path, config: Config, params: IndexParams, why: &str) -> Result<Self, ReplayError> {
        let fp = fingerprint(path).map_err(read_error(path))?;
        let places = place::places(path, &private_name(path, &fp));
        let mut index = Self::build(path, config, params, fp, &places, &mut |_, _| {})?;
        index.origin = format!("{} ({why})", index.origin);
        index.notice = Some(format!("{why}: index rebuilt"));
        Ok(index)
    }

    /// Why an existing index was not used (one line), once.
    pub fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// The table of a complete index at `side` that matches the recording at
    /// `recording`, or why there is none.
    fn load(
        side: &Path,
        recording: &Path,
        fp: &Fingerprint,
        config: Config,
        params: IndexParams,
    ) -> Result<Self, String> {
        let mut f = match open_index(side) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("no index yet".into()),
            Err(e) => return Err(format!("index not used ({}): {e}", side.display())),
        };
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        let damaged = |what: &str| format!("index damaged: {what}");
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(damaged("too short"));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        f.read_exact(&mut header).map_err(|e| e.to_string())?;
        if header[..8] != INDEX_MAGIC {
            return Err(damaged("bad magic"));
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        f.seek(SeekFrom::Start(len - FOOTER_LEN)).map_err(|e| e.to_string())?;
        f.read_exact(&mut footer).map_err(|e| e.to_string())?;
        if footer[8..] != INDEX_END {
            return Err(damaged("incomplete"));
        }
        let table_len = u64::from(u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]));
        let table_crc = u32::from_le_bytes([footer[4], footer[5], footer[6], footer[7]]);
        if table_len > MAX_TABLE_LEN || table_len > len - HEADER_LEN - FOOTER_LEN {
            return Err(damaged("table length out of range"));
        }
        let table_offset = len - FOOTER_LEN - table_len;
        let mut bytes = vec![0u8; table_len as usize];
        f.seek(SeekFrom::Start(table_offset)).map_err(|e| e.to_string())?;
        f.read_exact(&mut bytes).map_err(|e| e.to_string())?;
        if crc32fast::hash(&bytes) != table_crc {
            return Err(damaged("table checksum mismatch"));
        }
        if u16::from_le_bytes([header[8], header[9]]) != INDEX_VERSION {
            return Err("index written by another console version".into());
        }
        let table: Table = postcard::from_bytes(&bytes).map_err(|e| damaged(&e.to_string()))?;
        if table.version != INDEX_VERSION
            || table.console != env!("CARGO_PKG_VERSION")
            || table.schema != schema_probe()
        {
            return Err("index written by another console version".into());
        }
        if table.fingerprint != *fp {
            return Err("index stale: the recording changed".into());
        }
        if table.config != config || table.params != params {
            return Err("index built with other settings".into());
        }
        let in_range = table.entries.iter().all(|e| {
            e.blob_offset >= HEADER_LEN
                && e.blob_len <= MAX_KEYFRAME_LEN
                && e.blob_offset
                    .checked_add(e.blob_len)
                    .is_some_and(|end| end <= table_offset)
                && e.record_offset <= fp.len
        });
        let ordered = table.entries.windows(2).all(|w| w[0].items <= w[1].items);
        if !in_range || !ordered {
            return Err(damaged("keyframe entries out of range"));
        }
        if !table.blocks.is_sound(fp.len) {
            return Err(damaged("recording checksums out of range"));
        }
        let mut index = Self {
            table,
            store: Store::File(f),
            origin: format!("index {}", side.display()),
            verifier: None,
            notice: None,
        };
        // Where the file system cannot vouch for the bytes, every block is checked now;
        // else on a thread, before a keyframe that depends on them is used.
        let now = fs::metadata(recording).ok().and_then(|m| identity(&m));
        if now.is_none() || now != index.table.identity {
            Verifier::start(recording, index.table.blocks.clone(), fp.len).wait_for(fp.len)?;
        } else {
            index.verifier = Some(Verifier::start(recording, index.table.blocks.clone(), fp.len));
        }
        Ok(index)
    }

    /// Waits until the recording's bytes before `offset` are checked against the
    /// checksums taken when the index was built, so a keyframe at `offset` may be
    /// used; `Err` says what changed.
    pub(crate) fn verify_through(&self, offset: u64) -> Result<(), Changed> {
        let len = self.table.fingerprint.len;
        match &self.verifier {
            Some(v) => v
                .wait_for(self.table.blocks.block_end(offset.min(len), len))
                .map_err(Changed),
            None => Ok(()),
        }
    }

    /// Plays the whole recording, taking keyframes.
    fn build(
        path: &Path,
        config: Config,
        params: IndexParams,
        fp: Fingerprint,
        places: &[PathBuf],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self, ReplayError> {
        // The identity is taken first: a write during the build makes it stale.
        let (identity, blocks) = File::open(path)
            .and_then(|mut f| {
                let id = identity(&f.metadata()?);
                Ok((id, BlockSums::of(&mut f, fp.len)?))
            })
            .map_err(read_error(path))?;
        // Next to the recording, else in the private directory, else in memory.
        let opened = places.iter().find_map(|side| {
            let (f, tmp) = create_temporary(side).ok()?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            match w.write_all(&index_header()) {
                Ok(()) => Some((w, side.clone(), tmp)),
                Err(_) => {
                    drop(w);
                    let _ = fs::remove_file(&tmp);
                    None
                }
            }
        });
        let (mut target, side, tmp) = match opened {
            Some((w, side, tmp)) => (IndexTarget::File(w, HEADER_LEN), side, tmp),
            None => (
                IndexTarget::Memory(index_header().to_vec()),
                PathBuf::new(),
                PathBuf::new(),
            ),
        };
        // A build that fails leaves no temporary file behind.
        let _cleanup = RemoveOnDrop(&tmp);
        let mut player = Player::open(path, config)?;
        player.mark_warnings();
        let mut entries = Vec::new();
        let mut raw = Vec::new();
        let mut reported = 0u64;
        // The worker decides where keyframes go (it is ahead); the fold writes them
        // and tells it each one's size and TSC rate, which the next decision needs.
        let (written, told) = channel();
        let mut plan = KeyframePlan::new(params, told);
        let mut plan = |r: &Released, items: u64| plan.wants(r, items);
        let (entries_out, raw, target_out, len) = (&mut entries, &mut raw, &mut target, fp.len);
        // It owns `written`: should it fail, the worker waiting to hear is let go.
        let write = move |applied: &Applied, offset: u64, boundary: Option<catch_up::Boundary>| {
            if offset - reported >= PROGRESS_EVERY {
                reported = offset;
                progress(reported, len);
            }
            let Some(at) = boundary else {
                return Ok(());
            };
            let head = applied.head(at);
            raw.clear();
            *raw = postcard::to_extend(&(&head, &applied.state), std::mem::take(raw))
                .map_err(|e| ReplayError::Index(format!("cannot serialise a keyframe: {e}")))?;
            let blob = lz4_flex::block::compress(raw);
            let blob_offset = target_out
                .append(&blob)
                .map_err(|e| ReplayError::Io(format!("writing the index: {e}")))?;
            entries_out.push(Entry {
                items: head.items,
                max_ts: head.max_ts,
                record_offset: head.record_offset,
                blob_offset,
                blob_len: blob.len() as u64,
                blob_crc: crc32fast::hash(&blob),
                raw_len: raw.len() as u64,
            });
            // The worker may have stopped wanting them (it ended).
            let _ = written.send((blob.len() as u64, applied.state.tsc_hz()));
            Ok(())
        };
        player.play_out_decoding_ahead(&mut plan, write)?;
        // Items after the last record (end of input) are applied by `advance`.
        player.advance(|_, _| false);
        let summary = Summary {
            items: player.items(),
            ts_range: player.ts_range(),
            tsc_hz: player.state().tsc_hz(),
            damage: player.damage().cloned(),
            warnings: player.applied.marks.take().unwrap_or_default(),
        };
        // The keyframes are checked against the sums taken before the build (a write
        // during it makes them stale).
        let (blocks_for_verifier, len) = (blocks.clone(), fp.len);
        let table = Table {
            version: INDEX_VERSION,
            console: env!("CARGO_PKG_VERSION").into(),
            schema: schema_probe(),
            fingerprint: fp,
            identity,
            blocks,
            config,
            params,
            summary,
            entries,
        };
        let bytes = postcard::to_allocvec(&table).map_err(|e| ReplayError::Index(e.to_string()))?;
        let table_len = u32::try_from(bytes.len()).map_err(|_| ReplayError::Index("index table too large".into()))?;
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&table_len.to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        footer.extend_from_slice(&INDEX_END);
        let write = |e: io::Error| ReplayError::Io(format!("writing the index: {e}"));
        match target {
            IndexTarget::File(mut w, _) => {
                w.write_all(&bytes).and_then(|()| w.write_all(&footer)).map_err(write)?;
                let f = w.into_inner().map_err(|e| write(e.into_error()))?;
                f.sync_all().map_err(write)?;
                drop(f);
                fs::rename(&tmp, &side).map_err(write)?;
                let f = open_index(&side).map_err(write)?;
                Ok(Self {
                    table,
                    store: Store::File(f),
                    origin: format!("index built: {}", side.display()),
                    verifier: Some(Verifier::start(path, blocks_for_verifier, len)),
                    notice: None,
                })
            }
            IndexTarget::Memory(mut v) => {
                v.extend_from_slice(&bytes);
                v.extend_from_slice(&footer);
                Ok(Self {
                    table,
                    store: Store::Memory(v),
                    origin: "index built in memory (no private directory for it)".into(),
                    verifier: Some(Verifier::start(path, blocks_for_verifier, len)),
                    notice: None,
                })
            }
        }
    }

    /// What the whole recording holds.
    #[must_use]
    pub fn summary(&self) -> &Summary {
        &self.table.summary
    }

    /// The keyframes, by position.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.table.entries
    }

    /// Reads keyframe `entry` and positions a player there.
    pub(crate) fn restore(&mut self, path: &Path, header: Header, entry: &Entry) -> Result<Player, ReplayError> {
        let raw = self.keyframe_bytes(entry)?;
        let (head, state) = keyframe_head(entry, &raw)?;
        let state: State = postcard::from_bytes(state).map_err(|e| keyframe_damaged(entry, e.to_string()))?;
        Player::from_keyframe(path, header, KeyframeIn { head, state })
    }

    /// Reads keyframe `entry` and plays on from there until `stop` holds, decoding
    /// the recording while the state is read (see [`catch_up`]); with `capture_from`,
    /// also a checkpoint as [`Player::advance_capturing`] keeps one.
    pub(crate) fn restore_and_play(
        &mut self,
        path: &Path,
        header: Header,
        entry: &Entry,
        stop: catch_up::Stop<'_>,
        capture_from: Option<u64>,
    ) -> Result<(Player, Option<KeyframeIn>), ReplayError> {
        let raw = self.keyframe_bytes(entry)?;
        let (head, state) = keyframe_head(entry, &raw)?;
        catch_up::restore_and_play(path, header, head, state, stop, capture_from)
    }

    /// Keyframe `entry`'s bytes, checked and uncompressed.
    pub(super) fn keyframe_bytes(&mut self, entry: &Entry) -> Result<Vec<u8>, ReplayError> {
        let damaged = |what: String| keyframe_damaged(entry, what);
        let mut bytes = vec![0u8; usize::try_from(entry.blob_len).map_err(|e| damaged(e.to_string()))?];
        match &mut self.store {
            Store::File(f) => {
                f.seek(SeekFrom::Start(entry.blob_offset))
                    .map_err(|e| damaged(e.to_string()))?;
                f.read_exact(&mut bytes).map_err(|e| damaged(e.to_string()))?;
            }
            Store::Memory(v) => {
                let src = usize::try_from(entry.blob_offset)
                    .ok()
                    .and_then(|o| v.get(o..o.checked_add(bytes.len())?))
                    .ok_or_else(|| damaged("out of range".into()))?;
                bytes.copy_from_slice(src);
            }
        }
        if crc32fast::hash(&bytes) != entry.blob_crc {
            return Err(damaged("checksum mismatch".into()));
        }
        // LZ4 expands at most 255-fold: a larger length is damage, not an allocation.
        if entry.raw_len > MAX_KEYFRAME_LEN || entry.raw_len > entry.blob_len.saturating_mul(255) {
            return Err(damaged("length out of range".into()));
        }
        let raw_len = usize::try_from(entry.raw_len).map_err(|e| damaged(e.to_string()))?;
        let raw = lz4_flex::block::decompress(&bytes, raw_len).map_err(|e| damaged(e.to_string()))?;
        if raw.len() != raw_len {
            return Err(damaged("length mismatch".into()));
        }
        Ok(raw)
    }
}

fn keyframe_damaged(entry: &Entry, what: String) -> ReplayError {
    ReplayError::Index(format!("keyframe at item {}: {what}", entry.items))
}

/// The fields of keyframe `raw` before its state, and the state's bytes.
pub(super) fn keyframe_head<'a>(entry: &Entry, raw: &'a [u8]) -> Result<(KeyframeHead, &'a [u8]), ReplayError> {
    let (head, state): (KeyframeHead, _) =
        postcard::take_from_bytes(raw).map_err(|e| keyframe_damaged(entry, e.to_string()))?;
    if head.items != entry.items || head.record_offset != entry.record_offset {
        return Err(keyframe_damaged(entry, "does not match its entry".into()));
    }
    Ok((head, state))
}

/// Where a build's worker keeps boundaries for keyframes: the rules of
/// [`IndexParams`] at every record boundary with nothing pending, given the size of
/// the keyframe before and the TSC rate of its state (which the fold sends once it
/// has written it, and which are waited for only when a keyframe is otherwise due).
struct KeyframePlan {
    params: IndexParams,
    written: Receiver<(u64, u64)>,
    /// The last keyframe's items, largest timestamp, record offset and size (`None`
    /// until the fold has written it).
    last: (u64, Option<u64>, u64, Option<u64>),
    tsc_hz: u64,
    /// Largest task or interrupt timestamp released so far.
    max_ts: Option<u64>,
}

impl KeyframePlan {
    fn new(params: IndexParams, written: Receiver<(u64, u64)>) -> Self {
        Self {
            params,
            written,
            last: (0, None, HEADER_LEN, Some(0)),
            tsc_hz: crate::state::DEFAULT_TSC_HZ,
            max_ts: None,
        }
    }

    /// Whether a keyframe goes at the boundary after `record`, with `items` applied.
    fn wants(&mut self, record: &Released, items: u64) -> bool {
        if let Some(ts) = record.items.iter().filter_map(OwnedItem::timestamp).max() {
            self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        }
        // A record that releases nothing leaves its receive time pending.
        if record.items.is_empty() {
            return false;
        }
        let every_ticks = Clock::new(self.tsc_hz).ticks(self.params.every_ns).get();
        let due = items - self.last.0 >= self.params.every_items
            || self
                .max_ts
                .zip(self.last.1)
                .is_some_and(|(now, then)| now.saturating_sub(then) >= every_ticks);
        if !due {
            return false;
        }
        let size = match self.last.3 {
            Some(size) => size,
            None => match self.written.recv() {
                Ok((size, tsc_hz)) => {
                    self.tsc_hz = tsc_hz;
                    self.last.3 = Some(size);
                    size
                }
                // The fold stopped (an error): nothing more is written.
                Err(_) => return false,
            },
        };
        let spaced =
            (record.offset - self.last.2).saturating_mul(100) >= size.saturating_mul(self.params.min_spacing_percent);
        if spaced {
            self.last = (items, self.max_ts, record.offset, None);
        }
        spaced
    }
}

/// A checksum of the serialised form of a populated pipeline (state, decoder and
/// merge part way through a small generated stream): a change to the types a keyframe
/// holds changes it, so an index written by a build with another layout is rebuilt
/// instead of failing at every seek.
fn schema_probe() -> u32 {
    let g = generate(&Workload {
        cpus: 2,
        tasks: 6,
        polls_per_task: 2,
        wasm_instances: 1,
        loss: 1,
        frame_buffer: 256,
        seed: 1,
        ..Workload::default()
    });
    let wire = g.wire();
    let (mut state, mut pipeline) = (State::default(), Pipeline::new());
    pipeline.feed_into(&mut state, HostNs(1), &wire[..wire.len() / 2 + 7]);
    postcard::to_allocvec(&(&state, pipeline.decoder(), pipeline.merge().snapshot())).map_or(0, |b| crc32fast::hash(&b))
}

fn index_header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&INDEX_MAGIC);
    h[8..10].copy_from_slice(&INDEX_VERSION.to_le_bytes());
    h
}

/// Reading the recording failed.
fn read_error(path: &Path) -> impl Fn(io::Error) -> ReplayError + '_ {
    move |e| ReplayError::Io(format!("cannot read {}: {e}", path.display()))
}

/// Removes a temporary file when dropped (after a rename, nothing is left to remove).
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(self.0);
        }
    }
}

/// Where a build writes the index: its file, or memory when no file can be written.
enum IndexTarget {
    File(BufWriter<File>, u64),
    Memory(Vec<u8>),
}

impl IndexTarget {
    /// Appends a keyframe; returns its offset.
    fn append(&mut self, blob: &[u8]) -> io::Result<u64> {
        match self {
            Self::File(w, pos) => {
                let at = *pos;
                w.write_all(blob)?;
                *pos += blob.len() as u64;
                Ok(at)
            }
            Self::Memory(v) => {
                let at = v.len() as u64;
                v.extend_from_slice(blob);
                Ok(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::OwnedItem;
    use crate::replay::tests::TempDir;

    /// A build's worker places keyframes by the rules, spaced by the size of the one
    /// before, which it waits for; once the fold is gone it stops waiting.
    #[test]
    fn a_build_plan_spaces_keyframes_by_the_size_it_is_told() {
        let (written, told) = channel();
        let params = IndexParams {
            every_items: 10,
            every_ns: u64::MAX,
            min_spacing_percent: 100,
        };
        let mut plan = KeyframePlan::new(params, told);
        let record = |offset: u64, items: usize| Released {
            rx: Some(HostNs(1)),
            items: (0..items)
                .map(|_| {
                    OwnedItem::Plain(lucid_protocol::Item::Restart {
                        stream: lucid_protocol::StreamId::new(0, lucid_protocol::Ring::Task),
                    })
                })
                .collect(),
            offset,
            boundary: None,
        };
        assert!(!plan.wants(&record(500, 5), 5), "not due");
        assert!(plan.wants(&record(1000, 5), 10), "due, and no keyframe before");
        written.send((500, 1_000_000_000)).expect("send");
        assert!(!plan.wants(&record(1400, 10), 20), "closer than its size");
        assert!(!plan.wants(&record(1700, 0), 20), "its receive time stays pending");
        assert!(plan.wants(&record(1800, 10), 30), "its size away");
        drop(written);
        assert!(!plan.wants(&record(5000, 10), 40), "the fold is gone: no wait");
    }

    fn footer(table: &[u8]) -> Vec<u8> {
        let mut f = (table.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(table).to_le_bytes());
        f.extend_from_slice(&INDEX_END);
        f
    }

    #[test]
    fn an_index_of_another_layout_or_with_bad_entries_is_rebuilt() {
        assert_eq!(schema_probe(), schema_probe());
        let dir = TempDir::new();
        let g = generate(&Workload {
            tasks: 50,
            ..Workload::default()
        });
        let path = dir.file("a.lucid", &g.recording(500));
        let params = IndexParams {
            every_items: 100,
            every_ns: u64::MAX,
            min_spacing_percent: 0,
        };
        let index = Index::open_or_build(&path, Config::default(), params, &mut |_, _| {}).expect("index");
        assert!(!index.entries().is_empty());
        let side = place::index_path(&path);
        let raw = fs::read(&side).expect("read");
        let table_len = u32::from_le_bytes(raw[raw.len() - 16..raw.len() - 12].try_into().expect("4 bytes")) as usize;
        let body = &raw[..raw.len() - 16 - table_len];
        let fp = fingerprint(&path).expect("fingerprint");
        let rewrite = |t: &Table| {
            let bytes = postcard::to_allocvec(t).expect("table");
            fs::write(&side, [body, &bytes, &footer(&bytes)].concat()).expect("write");
        };
        rewrite(&index.table);
        assert!(
            Index::load(&side, &path, &fp, Config::default(), params).is_ok(),
            "the same table loads"
        );

        let mut t = index.table.clone();
        t.schema ^= 1;
        rewrite(&t);
        let e = Index::load(&side, &path, &fp, Config::default(), params).expect_err("another layout");
        assert!(e.contains("another console version"), "{e}");

        let mut t = index.table.clone();
        t.entries[0].blob_len = u64::MAX / 2;
        rewrite(&t);
        let e = Index::load(&side, &path, &fp, Config::default(), params).expect_err("entry out of range");
        assert!(e.contains("out of range"), "{e}");

        let e = Index::load(&side, &path, &fp, Config::default(), IndexParams::default()).expect_err("other settings");
        assert!(e.contains("settings") || e.contains("range"), "{e}");

        // A keyframe whose uncompressed length claims too much is refused before
        // anything is allocated for it.
        let mut t = index.table.clone();
        t.entries[0].raw_len = u64::MAX;
        rewrite(&t);
        let mut loaded = Index::load(&side, &path, &fp, Config::default(), params).expect("loads");
        let entry = loaded.entries()[0];
        let header = Player::open(&path, Config::default()).expect("open").header();
        let e = loaded.restore(&path, header, &entry).expect_err("too long");
        assert!(e.to_string().contains("length out of range"), "{e}");
    }

    #[test]
    fn an_index_kept_to_a_tenth_spaces_its_keyframes_ten_times_their_size() {
        let dir = TempDir::new();
        let g = generate(&Workload {
            cpus: 1,
            tasks: 100,
            polls_per_task: 1600,
            ..Workload::default()
        });
        let path = dir.file("a.lucid", &g.recording(4096));
        let recording = fs::metadata(&path).expect("recording").len();
        let build = |percent| {
            let params = IndexParams {
                every_items: 500,
                ..IndexParams::with_index_percent(percent)
            };
            let index = Index::open_or_build(&path, Config::default(), params, &mut |_, _| {}).expect("index");
            let size = fs::metadata(place::index_path(&path)).expect("index file").len();
            (index.entries().to_vec(), size)
        };
        let (full, full_size) = build(100);
        let (tenth, tenth_size) = build(10);
        assert_eq!(IndexParams::with_index_percent(100), IndexParams::default());
        assert!(full.len() > 8, "{} keyframes at 100 %", full.len());
        for w in tenth.windows(2) {
            assert!(
                w[1].record_offset - w[0].record_offset >= 10 * w[0].blob_len,
                "keyframes {} bytes apart, the first {} bytes",
                w[1].record_offset - w[0].record_offset,
                w[0].blob_len
            );
        }
        assert!(
            tenth_size * 4 < full_size && tenth_size * 100 < recording * 25,
            "index {tenth_size} B at 10 %, {full_size} B at 100 %, recording {recording} B"
        );
    }

    /// The bytes of `path` with one flipped in the middle (same length).
    fn flip_middle(path: &Path) {
        let mut bytes = fs::read(path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        fs::write(path, &bytes).expect("write");
    }

    #[test]
    fn a_change_the_file_system_does_not_show_is_found_before_a_keyframe_uses_it() {
        let dir = TempDir::new();
        let g = generate(&Workload {
            tasks: 2000,
            ..Workload::default()
        });
        let path = dir.file("a.lucid", &g.recording(500));
        assert!(fs::metadata(&path).expect("meta").len() > 2 * FINGERPRINT_LEN + 4096);
        let params = IndexParams {
            every_items: 1000,
            every_ns: u64::MAX,
            min_spacing_percent: 0,
        };
        let index = Index::open_or_build(&path, Config::default(), params, &mut |_, _| {}).expect("index");
        flip_middle(&path);
        // As if the edit had kept the file's identity: the table vouches for the new
        // file, so only the block checksums can tell.
        let side = place::index_path(&path);
        let raw = fs::read(&side).expect("read");
        let table_len = u32::from_le_bytes(raw[raw.len() - 16..raw.len() - 12].try_into().expect("4 bytes")) as usize;
        let body = &raw[..raw.len() - 16 - table_len];
        let mut t = index.table.clone();
        t.identity = identity(&fs::metadata(&path).expect("meta"));
        let bytes = postcard::to_allocvec(&t).expect("table");
        fs::write(&side, [body, &bytes, &footer(&bytes)].concat()).expect("write");

        let mut replay = crate::replay::Replay::open(&path, Config::default(), params).expect("open");
        assert!(!replay.index_origin().contains("built"), "{}", replay.index_origin());
        assert_eq!(replay.take_notice(), None);
        let target = replay.index().entries().last().expect("keyframes").items + 3;
        replay.seek(target).expect("seek");
        let notice = replay.take_notice().expect("a notice");
        assert!(notice.contains("recording changed"), "{notice}");
        assert!(replay.index_origin().contains("built"), "{}", replay.index_origin());
        // What it shows is what the changed recording holds.
        let mut reference = Player::open(&path, Config::default()).expect("open");
        reference.advance(|_, n| n >= target);
        assert_eq!(replay.position(), reference.items());
        assert_eq!(replay.state(), reference.state());
        let fresh = Index::rebuild(&path, Config::default(), params, "test").expect("fresh");
        assert_eq!(replay.index().summary(), fresh.summary());
        assert_eq!(replay.index().entries(), fresh.entries());
    }

    #[test]
    fn an_old_index_format_is_refused_before_its_table_is_decoded() {
        let dir = TempDir::new();
        let g = generate(&Workload::default());
        let path = dir.file("a.lucid", &g.recording(500));
        let params = IndexParams::default();
        let fp = fingerprint(&path).expect("fingerprint");
        let index = Index::open_or_build(&path, Config::default(), params, &mut |_, _| {}).expect("index");
        assert_eq!(
            INDEX_VERSION, 14,
            "bumped when keyframes began to put the state after the decoder and merge"
        );
        let side = place::index_path(&path);
        let mut raw = fs::read(&side).expect("read");
        raw[8..10].copy_from_slice(&4u16.to_le_bytes());
        fs::write(&side, &raw).expect("write");
        let e = Index::load(&side, &path, &fp, Config::default(), params).expect_err("version 4");
        assert!(e.contains("another console version"), "{e}");
        drop(index);
    }
}
