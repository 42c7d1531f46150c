//! The patterns of one view compiled together into one lazy DFA, and a search that steps several
//! of them through their haystacks at once.
//!
//! Nearly every value matches nothing, so what a request costs is the question "does any pattern
//! match?", asked of each view of each value. A DFA answers it at one table lookup per byte, but
//! each lookup waits on the one before it: a scan runs at the speed of the memory latency, not
//! of the processor. Two or three scans stepped in the same loop (a value's text and its shell
//! view, say) overlap their waits, and cost little more than one. Which patterns matched is
//! asked only of the views that matched something.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

/// The patterns of one view, compiled together.
#[derive(Clone)]
pub struct FormSet {
    dfa: DFA,
    /// The `RULES` index of each pattern.
    pub rules: Vec<usize>,
}

impl FormSet {
    /// Compiles `patterns` (lowercase, ASCII classes), each with its `RULES` index in `rules`;
    /// `multi_line` makes `^` and `$` match at line breaks.
    pub fn new(patterns: &[&str], rules: Vec<usize>, multi_line: bool) -> Result<FormSet, String> {
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
                    .cache_capacity(16 << 20),
            )
            .build_many(patterns)
            .map_err(|error| error.to_string())?;
        Ok(FormSet { dfa, rules })
    }

    pub fn create_cache(&self) -> Cache {
        self.dfa.create_cache()
    }

    /// The patterns that match `haystack` (indexes into `rules`).
    pub fn matches(&self, cache: &mut Cache, haystack: &[u8]) -> Vec<usize> {
        let mut found = PatternSet::new(self.dfa.pattern_len());
        let input = Input::new(haystack);
        // An error is impossible (see `new`); were one to happen, every pattern counts as
        // matched: the request is refused rather than let through unread.
        if self
            .dfa
            .try_which_overlapping_matches(cache, &input, &mut found)
            .is_err()
        {
            return (0..self.rules.len()).collect();
        }
        found.iter().map(|id| id.as_usize()).collect()
    }
}

/// A scan of one haystack by one set, in progress.
pub struct Scan<'a> {
    pub set: &'a FormSet,
    pub cache: &'a mut Cache,
    pub haystack: &'a [u8],
}

/// Whether some pattern of each scan's set matches its haystack, the scans stepped together.
/// `true` also where a search failed (impossible, see [`FormSet::new`]): the caller then asks
/// [`FormSet::matches`], which fails closed.
pub fn any_match<const N: usize>(mut scans: [Scan<'_>; N]) -> [bool; N] {
    let mut answers = [false; N];
    let mut states = [LazyStateID::default(); N];
    for (k, scan) in scans.iter_mut().enumerate() {
        match start(scan) {
            Ok(state) => states[k] = state,
            Err(()) => answers[k] = true,
        }
    }
    if answers.iter().any(|answer| *answer) {
        // Rare enough (a pattern matching the empty text) to finish one by one.
        return finish_each(scans, states, answers, 0);
    }
    let common = scans.iter().map(|s| s.haystack.len()).min().unwrap_or(0);
    let haystacks = scans.each_ref().map(|scan| &scan.haystack[..common]);
    let mut at = 0;
    while at < common {
        // The states of this loop are untagged: not a match, dead end or failure (those leave
        // it), nor a state the lazy DFA has yet to compute (which is computed before going on).
        let mut next = [LazyStateID::default(); N];
        let mut tagged = false;
        for k in 0..N {
            let scan = &scans[k];
            next[k] = scan
                .set
                .dfa
                .next_state_untagged(scan.cache, states[k], haystacks[k][at]);
            tagged |= next[k].is_tagged();
        }
        if tagged {
            let mut leave = false;
            for k in 0..N {
                if next[k].is_unknown() {
                    let scan = &mut scans[k];
                    match scan
                        .set
                        .dfa
                        .next_state(scan.cache, states[k], haystacks[k][at])
                    {
                        Ok(computed) => next[k] = computed,
                        Err(_) => answers[k] = true,
                    }
                }
                leave |= answers[k] || next[k].is_tagged();
            }
            if leave {
                // A match, a dead end or a failure: each goes its own way from here.
                return finish_each(scans, next, answers, at + 1);
            }
        }
        states = next;
        at += 1;
    }
    finish_each(scans, states, answers, common)
}

/// The start state of `scan`'s unanchored search (`Err` for a failure or an immediate match).
fn start(scan: &mut Scan<'_>) -> Result<LazyStateID, ()> {
    let input = Input::new(scan.haystack);
    let state = scan
        .set
        .dfa
        .start_state_forward(scan.cache, &input)
        .map_err(drop)?;
    if state.is_match() { Err(()) } else { Ok(state) }
}

/// Runs each scan not answered yet to the end of its haystack, from `at` in state `states[k]`.
fn finish_each<const N: usize>(
    scans: [Scan<'_>; N],
    states: [LazyStateID; N],
    mut answers: [bool; N],
    at: usize,
) -> [bool; N] {
    for (k, scan) in scans.into_iter().enumerate() {
        if !answers[k] {
            answers[k] = finish(scan, states[k], at);
        }
    }
    answers
}

fn finish(scan: Scan<'_>, mut state: LazyStateID, at: usize) -> bool {
    let dfa = &scan.set.dfa;
    let mut at = at;
    loop {
        if state.is_tagged() {
            if state.is_match() {
                return true;
            }
            if state.is_dead() {
                return false;
            }
            if state.is_quit() {
                return true;
            }
        }
        let Some(&byte) = scan.haystack.get(at) else {
            break;
        };
        state = match dfa.next_state(scan.cache, state, byte) {
            Ok(next) => next,
            Err(_) => return true,
        };
        at += 1;
    }
    match dfa.next_eoi_state(scan.cache, state) {
        Ok(end) => end.is_match() || end.is_quit(),
        Err(_) => true,
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

    #[test]
    fn matches_names_every_pattern_that_matches() {
        let set = set(&[r"select", r"union\s+select", r"drop"], false);
        let mut cache = set.create_cache();
        assert_eq!(set.matches(&mut cache, b"1 union select 2"), [0, 1]);
        assert_eq!(set.matches(&mut cache, b"drop it"), [2]);
        assert!(set.matches(&mut cache, b"nothing").is_empty());
    }
}
