//! Splitting one line of the text IR into tokens with their 1-based columns.
//!
//! Three kinds of token: node references (`%layer1/W`, the text without the `%`), words
//! (op names, attribute keys, dtypes, `true`/`false` and numbers such as `-1.5e-7`, `inf`
//! or `nan:0x7fc00001`) and the punctuation `= ( ) { } [ ] , ^ :`. A `#` starts a comment
//! that runs to the end of the line.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `%name`; the token's text is the name without the `%`.
    Ref,
    /// A word or number.
    Word,
    /// One punctuation character.
    Punct(char),
}

/// One token of a line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token<'a> {
    /// What it is.
    pub kind: Kind,
    /// Its text (for a reference, without the `%`).
    pub text: &'a str,
    /// 1-based column (in characters) of its first character (the `%` of a reference).
    pub col: usize,
}

impl Token<'_> {
    /// Whether this is the punctuation `c`.
    pub fn is(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }

    /// The token as the user wrote it, for error messages.
    pub fn shown(&self) -> String {
        match self.kind {
            Kind::Ref => format!("%{}", self.text),
            _ => self.text.to_string(),
        }
    }
}

const PUNCT: &str = "=(){}[],^:";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')
}

/// The tokens of `line`, or the 1-based column and message of the first bad character.
pub(super) fn lex(line: &str) -> Result<Vec<Token<'_>>, (usize, String)> {
    let mut toks = Vec::new();
    let mut it = line.char_indices().enumerate().peekable();
    // Consume characters while `pred` holds; returns the byte offset just past them.
    let take_while = |it: &mut std::iter::Peekable<_>, pred: fn(char) -> bool| -> usize {
        while let Some(&(_, (b, c))) = it.peek() {
            if !pred(c) {
                return b;
            }
            it.next();
        }
        line.len()
    };
    while let Some((i, (b, c))) = it.next() {
        let col = i + 1;
        if c == '#' {
            break;
        } else if c.is_whitespace() {
            continue;
        } else if c == '%' {
            let end = take_while(&mut it, is_name_char);
            if end == b + 1 {
                return Err((col, "expected a node name after `%`".into()));
            }
            toks.push(Token {
                kind: Kind::Ref,
                text: &line[b + 1..end],
                col,
            });
        } else if PUNCT.contains(c) {
            toks.push(Token {
                kind: Kind::Punct(c),
                text: &line[b..b + 1],
                col,
            });
        } else if is_word_char(c) {
            let mut end = take_while(&mut it, is_word_char);
            // `nan:0x...`: a NaN given by its bits.
            let word = line[b..end].trim_start_matches(['+', '-']);
            if word.eq_ignore_ascii_case("nan") && line[end..].starts_with(':') {
                it.next();
                end = take_while(&mut it, |c| c.is_ascii_alphanumeric());
            }
            toks.push(Token {
                kind: Kind::Word,
                text: &line[b..end],
                col,
            });
        } else {
            return Err((col, format!("unexpected character {c:?}")));
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<(Kind, &str, usize)> {
        lex(line)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.text, t.col))
            .collect()
    }

    #[test]
    fn tokens_and_columns() {
        assert_eq!(
            kinds("%a/b = add(%x, %y.1) {k=-1.5e-7} # done"),
            vec![
                (Kind::Ref, "a/b", 1),
                (Kind::Punct('='), "=", 6),
                (Kind::Word, "add", 8),
                (Kind::Punct('('), "(", 11),
                (Kind::Ref, "x", 12),
                (Kind::Punct(','), ",", 14),
                (Kind::Ref, "y.1", 16),
                (Kind::Punct(')'), ")", 20),
                (Kind::Punct('{'), "{", 22),
                (Kind::Word, "k", 23),
                (Kind::Punct('='), "=", 24),
                (Kind::Word, "-1.5e-7", 25),
                (Kind::Punct('}'), "}", 32),
            ]
        );
    }

    #[test]
    fn nan_bits_and_types() {
        assert_eq!(
            kinds("nan:0x7fc00001, f32[2]:"),
            vec![
                (Kind::Word, "nan:0x7fc00001", 1),
                (Kind::Punct(','), ",", 15),
                (Kind::Word, "f32", 17),
                (Kind::Punct('['), "[", 20),
                (Kind::Word, "2", 21),
                (Kind::Punct(']'), "]", 22),
                (Kind::Punct(':'), ":", 23),
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            lex("%x = é").unwrap_err(),
            (6, "unexpected character 'é'".to_string())
        );
        assert_eq!(
            lex("é %").unwrap_err().0,
            1,
            "columns count characters, not bytes"
        );
        assert_eq!(
            lex("x %").unwrap_err(),
            (3, "expected a node name after `%`".to_string())
        );
    }
}
