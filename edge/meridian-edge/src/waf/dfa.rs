//! The patterns of one view compiled together into one lazy DFA, and a search that steps several
//! of them through their haystacks at once.
//!
//! Nearly every value matches nothing, so what a request costs is the question "does any pattern
//! match?", asked of each view of each value. A DFA answers it at one table lookup per byte, but
//! each lookup waits on the one before it: a scan runs at the speed of the memory latency, not
//! of the processor. Two or three scans stepped in the same loop (a value's text and its shell
//! view, say) overlap their waits, and cost little more than one. Which patterns matched is
//! asked only of the views that matched something.

use std::collections::HashMap;
use std::hash::Hash;

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{self as hybrid, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

use super::normalize::{ShellByte, shell_byte};

/// The patterns of one view, compiled together.
#[derive(Clone)]
pub struct FormSet {
    dfa: DFA,
    /// The equivalence class of each byte (the DFA's own), as a [`Table`] reads it.
    classes: [u8; 256],
    /// How many classes there are.
    class_count: usize,
    /// The `RULES` index of each pattern.
    pub rules: Vec<usize>,
}

impl FormSet {
    /// Compiles `patterns` (lowercase, ASCII classes), each with its `RULES` index in `rules`;
    /// `multi_line` makes `^` and `$` match at line breaks.
    pub fn new(patterns: &[&str], rules: Vec<usize>, multi_line: bool) -> Result<FormSet, String> {
        FormSet::with_capacity(patterns, rules, multi_line, 16 << 20)
    }

    /// [`FormSet::new`] with a lazy DFA cache of `capacity` bytes (the least that works where
    /// `capacity` is smaller).
    fn with_capacity(
        patterns: &[&str],
        rules: Vec<usize>,
        multi_line: bool,
        capacity: usize,
    ) -> Result<FormSet, String> {
        let dfa = DFA::builder()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .multi_line(multi_line),
            )
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(64 << 20))
                    .which_captures(thompson::WhichCaptures::None),
            )
            // Every pattern that matches is wanted, not only the leftmost. The cache is large
            // enough never to be cleared by the values of ordinary traffic; without a minimum
            // clear count, the DFA never gives up, and with ASCII word boundaries only, no byte
            // makes it quit: its searches cannot fail.
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(capacity)
                    .skip_cache_capacity_check(true),
            )
            .build_many(patterns)
            .map_err(|error| error.to_string())?;
        let byte_classes = dfa.byte_classes();
        let classes = std::array::from_fn(|byte| byte_classes.get(byte as u8));
        // The alphabet counts the end of input as a class of its own, which no table needs.
        let class_count = byte_classes.alphabet_len() - 1;
        Ok(FormSet {
            dfa,
            classes,
            class_count,
            rules,
        })
    }

    pub fn create_cache(&self) -> Cache {
        Cache {
            lazy: self.dfa.create_cache(),
            table: Table::new(self.classes, self.class_count, TABLE_LIMIT),
        }
    }

    /// The patterns that match `haystack` (indexes into `rules`).
    pub fn matches(&self, cache: &mut Cache, haystack: &[u8]) -> Vec<usize> {
        let mut found = PatternSet::new(self.dfa.pattern_len());
        let input = Input::new(haystack);
        // An error is impossible (see `new`); were one to happen, every pattern counts as
        // matched: the request is refused rather than let through unread.
        if self
            .dfa
            .try_which_overlapping_matches(&mut cache.lazy, &input, &mut found)
            .is_err()
        {
            return (0..self.rules.len()).collect();
        }
        found.iter().map(|id| id.as_usize()).collect()
    }
}

/// What one thread keeps for one set: the lazy DFA's cache, and a [`Table`] of the transitions
/// its scans have taken.
pub struct Cache {
    lazy: hybrid::Cache,
    table: Table<LazyStateID, usize>,
}

/// An entry of a [`Table`] that names no state: a transition not copied yet (state 0 is no
/// state).
const UNKNOWN: u32 = 0;
/// The states a table has room for at first; it doubles its room as it needs more.
const FIRST_ROOM: usize = 64;
/// The most states a table numbers: its entries are 16 bits wide.
const MOST_ROOM: usize = 1 << 16;
/// Past this many entries (16 MiB), a table starts again empty.
const TABLE_LIMIT: usize = 4 << 20;

/// The transitions between the states a thread's scans have been in, copied from the lazy DFA
/// into a table the scan loop reads with one lookup and one comparison per byte: the lazy DFA's
/// own step also checks its state's tags and reloads its table at every byte. States are
/// numbered from 1 in the order met; an entry is the next state's number, or [`UNKNOWN`].
/// Transitions into a match, a dead end or a failure are never copied: the lazy DFA is asked
/// about those each time, which a scan does once at most.
///
/// The entries are laid out by byte class, then by state: the transitions of the few states
/// that ordinary text keeps to (met first, so numbered low), on the bytes it is made of, sit in
/// a few cache lines. A request finds them in memory that its own handling (the network, the
/// proxy, the other values) has evicted from the caches: per state, it would need a line for
/// almost every byte it reads.
///
/// A state `S` is the lazy DFA's id of it (or a pair of ids, see [`text_and_shell`]); `C` is
/// the clear count of the lazy cache (or caches) those ids belong to.
struct Table<S, C> {
    classes: [u8; 256],
    class_count: usize,
    /// The states there is room for: each class's entries are this many apart.
    room: usize,
    /// Where each byte's class's entries start (its class times `room`).
    bases: [u32; 256],
    /// Two bytes an entry: twice the transitions a cache line holds.
    trans: Vec<u16>,
    /// The state each number names (0 names none).
    states: Vec<S>,
    numbers: HashMap<S, u32>,
    /// The start state's entry, or [`UNKNOWN`] (every scan starts at its haystack's start, so
    /// in the same state).
    start: u32,
    /// The lazy cache's clear count when the table was made: a clear invalidates its ids.
    clears: C,
    /// How many times the table was emptied, so that a step can tell.
    generation: u64,
    limit: usize,
}

impl<S: Copy + Default + Eq + Hash, C: Copy + Default + PartialEq> Table<S, C> {
    fn new(classes: [u8; 256], class_count: usize, limit: usize) -> Self {
        let mut table = Table {
            classes,
            class_count,
            room: 0,
            bases: [0; 256],
            trans: Vec::new(),
            states: Vec::new(),
            numbers: HashMap::new(),
            start: UNKNOWN,
            clears: C::default(),
            generation: 0,
            limit,
        };
        table.reset(C::default());
        table
    }

    fn reset(&mut self, clears: C) {
        self.room = FIRST_ROOM.min(self.limit / self.class_count).max(2);
        self.trans.clear();
        self.trans.resize(self.class_count * self.room, 0);
        self.place();
        self.states.clear();
        self.states.push(S::default());
        self.numbers.clear();
        self.start = UNKNOWN;
        self.clears = clears;
        self.generation += 1;
    }

    /// Empties the table if the lazy cache was cleared since it was made (`clears` is its
    /// clear count now).
    fn follow(&mut self, clears: C) {
        if clears != self.clears {
            self.reset(clears);
        }
    }

    /// The number of `state` (untagged, of a lazy cache whose clear count is `clears`), given
    /// one if it has none.
    fn entry(&mut self, state: S, clears: C) -> u32 {
        self.follow(clears);
        if let Some(&entry) = self.numbers.get(&state) {
            return entry;
        }
        if self.states.len() == self.room {
            if self.class_count * self.room * 2 > self.limit || self.room * 2 > MOST_ROOM {
                self.reset(clears);
            } else {
                self.grow();
            }
        }
        let entry = u32::try_from(self.states.len()).expect("a table stays under its limit");
        self.states.push(state);
        self.numbers.insert(state, entry);
        entry
    }

    /// Doubles the room for states, each class's entries moved to their new place.
    fn grow(&mut self) {
        let room = self.room * 2;
        let mut trans = vec![0; self.class_count * room];
        for (class, entries) in self.trans.chunks_exact(self.room).enumerate() {
            trans[class * room..][..self.room].copy_from_slice(entries);
        }
        self.trans = trans;
        self.room = room;
        self.place();
    }

    fn place(&mut self) {
        let room = u32::try_from(self.room).expect("a table stays under its limit");
        self.bases = self.classes.map(|class| u32::from(class) * room);
    }

    /// Where the transition of `entry` on `byte` is.
    fn offset(&self, entry: u32, byte: u8) -> usize {
        (self.bases[usize::from(byte)] + entry) as usize
    }

    fn state(&self, entry: u32) -> S {
        self.states[entry as usize]
    }

    /// Records the transition of `from` (a state of `generation`) on `byte` to `entry`, unless
    /// the table was emptied meanwhile (and `from` with it).
    fn record(&mut self, from: u32, byte: u8, generation: u64, entry: u32) {
        if self.generation == generation {
            let offset = self.offset(from, byte);
            self.trans[offset] = u16::try_from(entry).expect("a table numbers at most 2^16 states");
        }
    }
}

/// A scan of one haystack by one set, in progress.
pub struct Scan<'a> {
    pub set: &'a FormSet,
    pub cache: &'a mut Cache,
    pub haystack: &'a [u8],
}

/// Why a walk stopped a scan before the end of its haystack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Running,
    /// A pattern matched, or the search failed (impossible, see [`FormSet::new`]; the caller
    /// then asks [`FormSet::matches`], which fails closed).
    Matched,
    /// No pattern can match any more.
    Dead,
}

/// Whether some pattern of each scan's set matches its haystack, the scans stepped together.
/// `true` also where a search failed (impossible, see [`FormSet::new`]): the caller then asks
/// [`FormSet::matches`], which fails closed.
pub fn any_match<const N: usize>(mut scans: [Scan<'_>; N]) -> [bool; N] {
    let mut answers = [false; N];
    let mut states = [UNKNOWN; N];
    let mut stops = [Stop::Running; N];
    for (k, scan) in scans.iter_mut().enumerate() {
        match start(scan) {
            Ok(state) => states[k] = state,
            Err(stop) => stops[k] = stop,
        }
    }
    let mut at = 0;
    if stops.iter().all(|stop| *stop == Stop::Running) {
        let common = scans.iter().map(|s| s.haystack.len()).min().unwrap_or(0);
        stops = walk(&mut scans, &mut states, &mut at, common);
    }
    // Each scan not stopped goes on alone to the end of its haystack (the longer ones, or all
    // of them where another one stopped).
    for (k, scan) in scans.iter_mut().enumerate() {
        answers[k] = match stops[k] {
            Stop::Matched => true,
            Stop::Dead => false,
            Stop::Running => finish(scan, states[k], at),
        };
    }
    answers
}

/// The start state's entry of `scan`'s unanchored search, or why no byte needs reading.
fn start(scan: &mut Scan<'_>) -> Result<u32, Stop> {
    // The lazy cache may have been cleared since the table was last used (by a search of
    // `FormSet::matches`, say): the table's ids are then gone too.
    scan.cache.table.follow(scan.cache.lazy.clear_count());
    if scan.cache.table.start != UNKNOWN {
        return Ok(scan.cache.table.start);
    }
    let input = Input::new(scan.haystack);
    let state = scan
        .set
        .dfa
        .start_state_forward(&mut scan.cache.lazy, &input)
        .map_err(|_| Stop::Matched)?;
    if state.is_match() {
        return Err(Stop::Matched);
    }
    if state.is_dead() {
        return Err(Stop::Dead);
    }
    let clears = scan.cache.lazy.clear_count();
    let table = &mut scan.cache.table;
    let entry = table.entry(state, clears);
    table.start = entry;
    Ok(entry)
}

/// Steps every scan from `*at` to `end` (within each haystack), and returns where each one
/// stopped; they all run to `end` unless one stops, and then all stop after that byte.
fn walk<const N: usize>(
    scans: &mut [Scan<'_>; N],
    states: &mut [u32; N],
    at: &mut usize,
    end: usize,
) -> [Stop; N] {
    loop {
        {
            // While every transition is in the tables: one lookup for where the byte's class's
            // entries start, one for the next state, for each scan.
            let trans = scans.each_ref().map(|scan| &scan.cache.table.trans[..]);
            let bases = scans.each_ref().map(|scan| &scan.cache.table.bases);
            let haystacks = scans.each_ref().map(|scan| &scan.haystack[..end]);
            while *at < end {
                let mut next = [UNKNOWN; N];
                for k in 0..N {
                    let base = bases[k][usize::from(haystacks[k][*at])];
                    next[k] = u32::from(trans[k][(base + states[k]) as usize]);
                }
                if next.contains(&UNKNOWN) {
                    break;
                }
                *states = next;
                *at += 1;
            }
        }
        if *at == end {
            return [Stop::Running; N];
        }
        let mut stops = [Stop::Running; N];
        for k in 0..N {
            match step(&mut scans[k], states[k], *at) {
                Ok(next) => states[k] = next,
                Err(stop) => stops[k] = stop,
            }
        }
        *at += 1;
        if stops.iter().any(|stop| *stop != Stop::Running) {
            return stops;
        }
    }
}

/// The transition of `scan` from `state` on the byte at `at`: from the table if it has it,
/// else from the lazy DFA, and then copied into the table.
fn step(scan: &mut Scan<'_>, state: u32, at: usize) -> Result<u32, Stop> {
    let byte = scan.haystack[at];
    let table = &scan.cache.table;
    let known = u32::from(table.trans[table.offset(state, byte)]);
    if known != UNKNOWN {
        return Ok(known);
    }
    let (current, generation) = (table.state(state), table.generation);
    let next = scan
        .set
        .dfa
        .next_state(&mut scan.cache.lazy, current, byte)
        .map_err(|_| Stop::Matched)?;
    if next.is_tagged() {
        // Computed, so a match, a dead end or a failure (quit).
        return Err(if next.is_dead() {
            Stop::Dead
        } else {
            Stop::Matched
        });
    }
    let clears = scan.cache.lazy.clear_count();
    let table = &mut scan.cache.table;
    let entry = table.entry(next, clears);
    table.record(state, byte, generation, entry);
    Ok(entry)
}

/// Runs `scan` alone from `at` in `state` to the end of its haystack: whether it matches.
fn finish(scan: &mut Scan<'_>, state: u32, at: usize) -> bool {
    let mut states = [state];
    let mut at = at;
    let end = scan.haystack.len();
    let [stop] = walk(std::array::from_mut(scan), &mut states, &mut at, end);
    match stop {
        Stop::Matched => true,
        Stop::Dead => false,
        Stop::Running => {
            let id = scan.cache.table.state(states[0]);
            match scan.set.dfa.next_eoi_state(&mut scan.cache.lazy, id) {
                Ok(end) => end.is_match() || end.is_quit(),
                Err(_) => true,
            }
        }
    }
}

/// A state of [`text_and_shell`]'s pass: the text set's state, the shell set's state, and
/// whether a space is owed to the shell view (written out before the next byte it keeps, unless
/// that byte is one written with no space before it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
struct Pair {
    text: LazyStateID,
    shell: LazyStateID,
    space: bool,
}

/// The table of [`text_and_shell`]: a [`Table`] of pairs of states, over byte classes that
/// tell apart what both sets and the shell view tell apart.
pub struct PairTable {
    table: Table<Pair, [usize; 2]>,
}

impl PairTable {
    pub fn new(text: &FormSet, shell: &FormSet) -> PairTable {
        // A byte's class is what each set makes of it, and what the shell view makes of it:
        // bytes alike in all of these step every pair alike.
        let mut kinds: HashMap<(u8, ShellByte, Option<u8>), u8> = HashMap::new();
        let mut classes = [0; 256];
        for (byte, class) in classes.iter_mut().enumerate() {
            let byte = byte as u8;
            let kind = shell_byte(byte);
            let written = kind
                .written(byte)
                .map(|written| shell.classes[usize::from(written)]);
            let next = kinds.len() as u8;
            *class = *kinds
                .entry((text.classes[usize::from(byte)], kind, written))
                .or_insert(next);
        }
        PairTable {
            table: Table::new(classes, kinds.len(), TABLE_LIMIT),
        }
    }
}

/// Whether the patterns of `text` may match `haystack` (ASCII), or those of `shell` its shell
/// view, read in one pass over `haystack` without making the shell view: each byte steps the
/// text set, and the shell set on what the shell view makes of it ([`shell_byte`]). `false`
/// means neither matches; `true` that one may (the caller then matches each view as usual).
pub fn text_and_shell(
    text: (&FormSet, &mut Cache),
    shell: (&FormSet, &mut Cache),
    table: &mut PairTable,
    haystack: &[u8],
) -> bool {
    let mut pass = PairPass {
        text: text.0,
        shell: shell.0,
        text_cache: &mut text.1.lazy,
        shell_cache: &mut shell.1.lazy,
        table,
    };
    pass.run(haystack).is_err()
}

struct PairPass<'a> {
    text: &'a FormSet,
    shell: &'a FormSet,
    text_cache: &'a mut hybrid::Cache,
    shell_cache: &'a mut hybrid::Cache,
    table: &'a mut PairTable,
}

/// A pass stopped where a pattern may match.
struct MayMatch;

impl PairPass<'_> {
    fn clears(&self) -> [usize; 2] {
        [
            self.text_cache.clear_count(),
            self.shell_cache.clear_count(),
        ]
    }

    fn run(&mut self, haystack: &[u8]) -> Result<(), MayMatch> {
        let mut state = self.start()?;
        let mut at = 0;
        loop {
            {
                let (trans, bases) = (&self.table.table.trans[..], &self.table.table.bases);
                while let Some(&byte) = haystack.get(at) {
                    let next = u32::from(trans[(bases[usize::from(byte)] + state) as usize]);
                    if next == UNKNOWN {
                        break;
                    }
                    state = next;
                    at += 1;
                }
            }
            let Some(&byte) = haystack.get(at) else {
                break;
            };
            state = self.step(state, byte)?;
            at += 1;
        }
        self.end(state)
    }

    fn start(&mut self) -> Result<u32, MayMatch> {
        let clears = self.clears();
        let table = &mut self.table.table;
        table.follow(clears);
        if table.start != UNKNOWN {
            return Ok(table.start);
        }
        let input = Input::new(&b""[..]);
        let text = self
            .text
            .dfa
            .start_state_forward(self.text_cache, &input)
            .map_err(|_| MayMatch)?;
        let shell = self
            .shell
            .dfa
            .start_state_forward(self.shell_cache, &input)
            .map_err(|_| MayMatch)?;
        if text.is_tagged() || shell.is_tagged() {
            return Err(MayMatch);
        }
        let pair = Pair {
            text,
            shell,
            space: false,
        };
        let clears = self.clears();
        let table = &mut self.table.table;
        let entry = table.entry(pair, clears);
        table.start = entry;
        Ok(entry)
    }

    /// The shell set's state after it reads `byte`.
    fn shell_step(&mut self, state: LazyStateID, byte: u8) -> Result<LazyStateID, MayMatch> {
        match self.shell.dfa.next_state(self.shell_cache, state, byte) {
            Ok(next) if !next.is_tagged() => Ok(next),
            _ => Err(MayMatch),
        }
    }

    fn step(&mut self, state: u32, byte: u8) -> Result<u32, MayMatch> {
        let generation = self.table.table.generation;
        let Pair {
            text,
            mut shell,
            mut space,
        } = self.table.table.state(state);
        let text = match self.text.dfa.next_state(self.text_cache, text, byte) {
            Ok(next) if !next.is_tagged() => next,
            _ => return Err(MayMatch),
        };
        let kind = shell_byte(byte);
        if kind == ShellByte::Space {
            space = true;
        }
        if let Some(written) = kind.written(byte) {
            // The space owed is written before the byte, unless the byte is joined.
            if space && kind != ShellByte::Joined {
                shell = self.shell_step(shell, b' ')?;
            }
            space = false;
            shell = self.shell_step(shell, written)?;
        }
        let clears = self.clears();
        let table = &mut self.table.table;
        let entry = table.entry(Pair { text, shell, space }, clears);
        table.record(state, byte, generation, entry);
        Ok(entry)
    }

    fn end(&mut self, state: u32) -> Result<(), MayMatch> {
        let Pair { text, shell, space } = self.table.table.state(state);
        let shell = if space {
            self.shell_step(shell, b' ')?
        } else {
            shell
        };
        let ends = |end: Result<LazyStateID, _>| match end {
            Ok(end) if end.is_match() || end.is_quit() => Err(MayMatch),
            Ok(_) => Ok(()),
            Err(_) => Err(MayMatch),
        };
        ends(self.shell.dfa.next_eoi_state(self.shell_cache, shell))?;
        ends(self.text.dfa.next_eoi_state(self.text_cache, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan<'a>(set: &'a FormSet, cache: &'a mut Cache, haystack: &'a [u8]) -> Scan<'a> {
        Scan {
            set,
            cache,
            haystack,
        }
    }

    fn set(patterns: &[&str], multi_line: bool) -> FormSet {
        FormSet::new(patterns, (0..patterns.len()).collect(), multi_line).unwrap()
    }

    /// Stepping scans together answers what the DFA's own overlapping search finds, whatever
    /// the haystacks' lengths, wherever the match sits (first byte, last byte, end of text).
    #[test]
    fn scans_stepped_together_agree_with_the_dfa_search() {
        let sets = [
            set(&[r"abc$", r"^x", r"\bfoo\b", r"a{3}", r"z\d"], false),
            set(&[r"^bar$", r";\s*ls\b"], true),
            set(&[r"q"], false),
        ];
        let mut caches: Vec<Cache> = sets.iter().map(FormSet::create_cache).collect();
        let haystacks: [&[u8]; 16] = [
            b"",
            b"x",
            b"abc",
            b"zabc",
            b"abcz",
            b"a foo b",
            b"afoob",
            b"aaa",
            b"aa a",
            b"z1",
            b"no\nbar\nyes",
            b"bar",
            b"one; ls -la",
            b"one;ls",
            b"plain prose of some length, with nothing in it at all",
            b"q at the start and the end: q",
        ];
        let alone = |set: &FormSet, cache: &mut Cache, haystack: &[u8]| {
            !set.matches(cache, haystack).is_empty()
        };
        for a in haystacks {
            for b in haystacks {
                let [x, y] = {
                    let [c0, c1, _] = &mut caches[..] else {
                        unreachable!()
                    };
                    any_match([scan(&sets[0], c0, a), scan(&sets[1], c1, b)])
                };
                assert_eq!(x, alone(&sets[0], &mut caches[0], a), "{a:?}");
                assert_eq!(y, alone(&sets[1], &mut caches[1], b), "{b:?}");
                let [c0, c1, c2] = &mut caches[..] else {
                    unreachable!()
                };
                let three = any_match([
                    scan(&sets[2], c2, b),
                    scan(&sets[0], c0, a),
                    scan(&sets[1], c1, a),
                ]);
                assert_eq!(three[0], alone(&sets[2], &mut caches[2], b), "{b:?}");
                assert_eq!(three[1], x, "{a:?}");
                assert_eq!(three[2], alone(&sets[1], &mut caches[1], a), "{a:?}");
            }
        }
    }

    /// Haystacks of different lengths stepped together: a match anywhere in the longer one
    /// (first byte, middle, last byte, end of text, or a partial match that lasts long) is
    /// found after the shorter one has ended, and prose finds nothing.
    #[test]
    fn long_haystacks_beside_short_ones_miss_nothing() {
        let sets = [
            set(
                &[r"\bunion\s+select\b", r"x.{0,90}y", r"end$", r"^start"],
                false,
            ),
            set(&[r";\s*cat\b"], false),
        ];
        let mut caches: Vec<Cache> = sets.iter().map(FormSet::create_cache).collect();
        let filler = "the quick brown fox jumps over the lazy dog, again and again ".repeat(4);
        let inserts = [
            "",
            "union select",
            "x",
            "y",
            "union",
            "select",
            "; cat",
            "end",
            "start",
        ];
        for length in [96, 97, 150, 240] {
            let base = &filler[..length];
            for insert in inserts {
                for at in (0..=length)
                    .step_by(7)
                    .chain([length / 2 - 1, length / 2, length])
                {
                    let mut text = base.to_owned();
                    text.insert_str(at.min(text.len()), insert);
                    for other in [&text[..], &base[..10], base] {
                        let text = text.as_bytes();
                        let other = other.as_bytes();
                        let [c0, c1] = &mut caches[..] else {
                            unreachable!()
                        };
                        let [x, y] =
                            any_match([scan(&sets[0], c0, text), scan(&sets[1], c1, other)]);
                        assert_eq!(
                            x,
                            !sets[0].matches(&mut caches[0], text).is_empty(),
                            "{insert:?} at {at} in {length}"
                        );
                        assert_eq!(y, !sets[1].matches(&mut caches[1], other).is_empty());
                    }
                }
            }
        }
        // A partial match begun before the middle and ended far past it.
        let mut long = "x".to_owned();
        long.push_str(&"a".repeat(80));
        long.push('y');
        long.push_str(&"b".repeat(40));
        let [found] = any_match([scan(&sets[0], &mut caches[0], long.as_bytes())]);
        assert!(found);
    }

    /// A table with room for three states empties itself again and again on prose; what it
    /// answers is still what the DFA's own search finds.
    #[test]
    fn a_table_that_keeps_emptying_itself_misses_nothing() {
        let set = set(
            &[r"\bunion\s+select\b", r";\s*cat\b", r"x.{0,9}y", r"end$"],
            false,
        );
        let mut small = Cache {
            lazy: set.dfa.create_cache(),
            table: Table::new(set.classes, set.class_count, 4 * set.class_count),
        };
        let mut roomy = set.create_cache();
        let texts = [
            "the quick brown fox jumps over the lazy dog",
            "a union select b",
            "unions elect nothing",
            "cat; cat",
            "a; cat /etc/passwd",
            "x123456789y",
            "x1234567890y",
            "the end",
            "the end.",
        ];
        for _ in 0..3 {
            for text in texts {
                let expected = !set.matches(&mut roomy, text.as_bytes()).is_empty();
                let [found] = any_match([scan(&set, &mut small, text.as_bytes())]);
                assert_eq!(found, expected, "{text:?}");
                let [found] = any_match([scan(&set, &mut roomy, text.as_bytes())]);
                assert_eq!(found, expected, "{text:?}");
            }
        }
        assert!(small.table.generation > 3, "the small table was emptied");
        assert!(small.table.trans.len() <= 4 * set.class_count);
    }

    /// A table that outgrows its first room moves every transition it copied: afterwards it
    /// answers as before, and as the DFA's own search does.
    #[test]
    fn a_table_that_grows_keeps_its_transitions() {
        let set = set(&[r"x.{0,9}y", r"\bunion\s+select\b"], false);
        let mut cache = set.create_cache();
        let mut roomy = set.create_cache();
        // `x.{0,9}y` keeps a state for each pattern of x's among the last ten bytes: hundreds.
        let texts: Vec<String> = (0..600u32)
            .map(|i| {
                let bits: String = (0..10)
                    .map(|b| if i >> b & 1 == 1 { 'x' } else { 'a' })
                    .collect();
                let tail = if i % 3 == 0 { "y" } else { "" };
                let words = if i % 7 == 0 {
                    " union select"
                } else {
                    " union"
                };
                format!("{bits}{tail}{words}")
            })
            .collect();
        let check = |cache: &mut Cache, roomy: &mut Cache| {
            let mut matched = 0;
            for text in &texts {
                let expected = !set.matches(roomy, text.as_bytes()).is_empty();
                let [found] = any_match([scan(&set, cache, text.as_bytes())]);
                assert_eq!(found, expected, "{text:?}");
                matched += usize::from(found);
            }
            matched
        };
        let matched = check(&mut cache, &mut roomy);
        assert!(matched > 100 && matched < 500, "{matched} of 600 matched");
        assert!(cache.table.room > FIRST_ROOM, "the table grew");
        assert_eq!(cache.table.generation, 1, "and was never emptied");
        let grown = cache.table.states.len();
        check(&mut cache, &mut roomy);
        assert_eq!(
            cache.table.states.len(),
            grown,
            "the second round is read from the table"
        );
    }

    /// A lazy DFA (of the smallest cache) cleared between two scans, here by `matches` on other
    /// text: the ids the table kept belong to the old cache, so the next scan starts from an
    /// emptied table, and finds what a roomy cache finds.
    #[test]
    fn a_lazy_cache_cleared_between_scans_misses_nothing() {
        let patterns = [r"\bunion\s+select\b", r";\s*cat\b", r"x.{0,9}y", r"end$"];
        let set = FormSet::with_capacity(&patterns, (0..4).collect(), false, 0).unwrap();
        let roomy = self::set(&patterns, false);
        let mut cache = set.create_cache();
        let mut large = roomy.create_cache();
        // Short enough for its states to stay in the smallest cache.
        let prose = "a ";
        // `x.{0,9}y` keeps a state for each pattern of x's among the last ten bytes.
        let churn: String = (0..4000u32)
            .map(|i| {
                if (i.wrapping_mul(2_654_435_761) >> 13) & 1 == 0 {
                    'x'
                } else {
                    'a'
                }
            })
            .collect();
        for (round, attack) in ["union select", "; cat", "x12345y", "end"]
            .iter()
            .enumerate()
        {
            let [found] = any_match([scan(&set, &mut cache, prose.as_bytes())]);
            assert!(!found);
            let cleared = cache.lazy.clear_count();
            assert!(set.matches(&mut cache, churn.as_bytes()).is_empty());
            assert!(cache.lazy.clear_count() > cleared, "round {round}: cleared");
            // The next scan starts with a table emptied of the old cache's states.
            start(&mut scan(&set, &mut cache, b"")).unwrap();
            assert_eq!(cache.table.clears, cache.lazy.clear_count());
            assert_eq!(cache.table.states.len(), 2, "the start state alone");
            let text = format!("{prose}{attack}");
            let [found] = any_match([scan(&set, &mut cache, text.as_bytes())]);
            assert!(found, "{text:?}");
            assert!(!roomy.matches(&mut large, text.as_bytes()).is_empty());
        }
    }

    #[test]
    fn matches_names_every_pattern_that_matches() {
        let set = set(&[r"select", r"union\s+select", r"drop"], false);
        let mut cache = set.create_cache();
        assert_eq!(set.matches(&mut cache, b"1 union select 2"), [0, 1]);
        assert_eq!(set.matches(&mut cache, b"drop it"), [2]);
        assert!(set.matches(&mut cache, b"nothing").is_empty());
    }
}
