//! Artifact rule patterns: Python's `fnmatch` language, as the reference matches artifact
//! names, with one stricter choice.
//!
//! - `*` matches any run of characters, `/` included; there is no `**`.
//! - `?` matches one character, `/` included.
//! - `[seq]` matches one character in the set, `[!seq]` one not in it; `a-z` is a range; a `]`
//!   first in the set is literal; `^` is an ordinary character (so `[^a]` matches `^` or `a`).
//! - Every other character, backslash included, matches itself; matching is case-sensitive.
//!
//! Off-spec (stricter than `fnmatch`): a `[` without its closing `]`, and a reversed range such
//! as `[z-a]`, are errors when the layout is loaded, where `fnmatch` would silently read the
//! first as a literal and make the second match nothing (THREATS F6).
//!
//! Matching takes at most O(pattern × name) steps, whatever the pattern (H4).

use std::fmt;

/// Why a pattern is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// A `[` with no closing `]`.
    #[error("pattern {0:?}: '[' without a closing ']' (write [[] for a literal '[')")]
    UnclosedSet(String),
    /// A range whose end is below its start.
    #[error("pattern {pattern:?}: reversed range {start}-{end}")]
    ReversedRange {
        /// The pattern.
        pattern: String,
        /// The range's start.
        start: char,
        /// The range's end.
        end: char,
    },
    /// An empty pattern.
    #[error("empty pattern")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne => true,
            Token::AnyRun => false,
            Token::Set { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled pattern: its leading literal text, then the tokens after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    prefix: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        let chars: Vec<char> = source.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::AnyOne);
                    i += 1;
                }
                '[' => {
                    let (token, next) = compile_set(source, &chars, i)?;
                    tokens.push(token);
                    i = next;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        let literal = tokens
            .iter()
            .take_while(|t| matches!(t, Token::Literal(_)))
            .count();
        let prefix = tokens[..literal]
            .iter()
            .filter_map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        tokens.drain(..literal);
        Ok(Pattern {
            source: source.to_owned(),
            prefix,
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `name` matches. Each token but `*` consumes exactly one character,
    /// so backtracking only to the last `*` is complete, and bounded by pattern × name.
    pub fn matches(&self, name: &str) -> bool {
        let Some(name) = name.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        if let [Token::AnyRun] = self.tokens.as_slice() {
            return true;
        }
        let next_char = |at: usize| name[at..].chars().next();
        let (mut p, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = next_char(n) {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(token) if token.matches(c) => {
                    p += 1;
                    n += c.len_utf8();
                }
                _ => match star {
                    Some((star_p, star_n)) => {
                        // Let the last `*` take one more character, and try again after it.
                        let taken = star_n + next_char(star_n).map_or(1, char::len_utf8);
                        p = star_p + 1;
                        n = taken;
                        star = Some((star_p, taken));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::AnyRun)
    }
}

impl Pattern {
    /// Whether some artifact recorded under `path` could match: `path` itself, or a name
    /// below it (`path/...`). An empty `path` or `.` stands for the whole tree. This is how
    /// `layout check` tells a pattern that can never match what a step records.
    pub fn could_match_within(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "." {
            return true;
        }
        if self.matches(path) {
            return true;
        }
        // Run the pattern as a set of positions over `path/`; any position still alive can
        // go on to match some name below it, since every token accepts some character.
        let tokens: Vec<Token> = self
            .prefix
            .chars()
            .map(Token::Literal)
            .chain(self.tokens.iter().cloned())
            .collect();
        let close = |states: &mut Vec<bool>| {
            for p in 0..tokens.len() {
                if states[p] && tokens[p] == Token::AnyRun {
                    states[p + 1] = true;
                }
            }
        };
        let mut states = vec![false; tokens.len() + 1];
        states[0] = true;
        close(&mut states);
        for c in path.chars().chain(['/']) {
            let mut next = vec![false; tokens.len() + 1];
            for p in 0..tokens.len() {
                if !states[p] {
                    continue;
                }
                match &tokens[p] {
                    Token::AnyRun => next[p] = true,
                    token if token.matches(c) => next[p + 1] = true,
                    _ => {}
                }
            }
            states = next;
            close(&mut states);
        }
        // The end position alone would match `path/` exactly, which is no artifact's name.
        states[..tokens.len()].iter().any(|&alive| alive)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Compiles the set starting at `chars[open]` (a `[`), returning it and the index after `]`.
fn compile_set(source: &str, chars: &[char], open: usize) -> Result<(Token, usize), PatternError> {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = Vec::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(PatternError::UnclosedSet(source.to_owned()));
        };
        if c == ']' && i > first {
            return Ok((Token::Set { negated, ranges }, i + 1));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            if end < c {
                return Err(PatternError::ReversedRange {
                    pattern: source.to_owned(),
                    start: c,
                    end,
                });
            }
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn could_match_within_tells_patterns_that_can_never_match_under_a_path() {
        let within = |pattern: &str, path: &str| {
            Pattern::new(pattern)
                .expect("pattern")
                .could_match_within(path)
        };
        assert!(within("src/*", "src"));
        assert!(within("src/*.c", "src"));
        assert!(within("*", "anything"));
        assert!(within("*.c", "src"));
        assert!(within("s?c/main.c", "src"));
        assert!(within("[a-z]rc/*", "src"));
        assert!(within("dist/app.tar.gz", "dist"));
        assert!(within("dist/app.tar.gz", "dist/app.tar.gz"));
        assert!(within("dist/*", "."));
        assert!(within("src/*", "src/"));
        assert!(!within("build/*", "src"));
        assert!(!within("src/*.c", "dist"));
        assert!(!within("srcx/*", "src"));
        assert!(!within("[!s]rc/*", "src"));
        assert!(!within("dist/app.zip", "dist/app.tar.gz"));
        assert!(!within("src", "src/lib"));
        assert!(within("src*", "src/lib"));
    }

    /// (pattern, name, matches) rows, each checked against Python 3.11's
    /// `fnmatch.fnmatchcase(name, pattern)`.
    const VECTORS: &[(&str, &str, bool)] = &[
        ("*", "", true),
        ("*", "a", true),
        ("*", "dir/sub/file", true),
        ("*.py", "a.py", true),
        ("*.py", "dir/a.py", true),
        ("*.py", "a.pyc", false),
        ("src/*", "src/a/b.c", true),
        ("src/*", "srcx/a", false),
        ("?", "a", true),
        ("?", "/", true),
        ("?", "", false),
        ("?", "ab", false),
        ("a?c", "a/c", true),
        ("[abc]", "b", true),
        ("[abc]", "d", false),
        ("[!abc]", "d", true),
        ("[!abc]", "a", false),
        ("[^a]", "^", true),
        ("[^a]", "a", true),
        ("[^a]", "b", false),
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("[]]", "]", true),
        ("[]a]", "a", true),
        ("[!]]", "a", true),
        ("[!]]", "]", false),
        ("[a-]", "-", true),
        ("[-a]", "-", true),
        ("\\*", "\\x", true),
        ("\\*", "*", false),
        ("a\\b", "a\\b", true),
        ("foo", "foo", true),
        ("foo", "Foo", false),
        ("foo", "foo/", false),
        ("*foo*", "barfoobaz", true),
        ("*a*a*b", "aaaaaaaab", true),
        ("*a*a*b", "aaaaaaaa", false),
        ("**", "a/b", true),
        ("**/x", "x", false),
        ("**/x", "a/x", true),
        ("é*", "ecole", false),
        ("é*", "été", true),
        ("[é]", "é", true),
        ("*.tar.gz", "pkg.tar.gz", true),
        ("dir/[!.]*", "dir/.hidden", false),
        ("dir/[!.]*", "dir/x", true),
    ];

    #[test]
    fn f6_fnmatch_vector_table() {
        for &(pattern, name, expected) in VECTORS {
            let compiled = Pattern::new(pattern).expect(pattern);
            assert_eq!(compiled.matches(name), expected, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn f6_invalid_patterns_are_layout_errors() {
        assert!(matches!(
            Pattern::new("foo["),
            Err(PatternError::UnclosedSet(_))
        ));
        assert!(matches!(
            Pattern::new("[]"),
            Err(PatternError::UnclosedSet(_))
        ));
        assert!(matches!(
            Pattern::new("[!]"),
            Err(PatternError::UnclosedSet(_))
        ));
        assert!(matches!(
            Pattern::new("[z-a]"),
            Err(PatternError::ReversedRange { .. })
        ));
        assert!(matches!(Pattern::new(""), Err(PatternError::Empty)));
    }

    #[test]
    fn h4_pathological_pattern_is_polynomial() {
        let pattern = Pattern::new(&("*a".repeat(50) + "b")).expect("valid");
        let name = "a".repeat(5000);
        // Exponential backtracking would never finish; this is 50 x 5000 steps at most per
        // star, measured at about 0.5 ms in a debug build. The bound (500 times that) allows
        // for a loaded machine; the match runs on its own thread so that a matcher that never
        // finishes fails the test instead of hanging it.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let matched = pattern.matches(&name);
            let _ = sender.send((matched, started.elapsed()));
        });
        let (matched, took) = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the match finishes");
        assert!(!matched);
        assert!(
            took < std::time::Duration::from_millis(250),
            "the match took {took:?}"
        );
    }
}
