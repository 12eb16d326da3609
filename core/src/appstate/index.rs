//! Collections, record indexes, and the JSON string arrays they are written as.
//!
//! An index is an array of strings (`["archive", chat]`); its JSON text is HMACed into
//! the record's address, so every writer must produce the same bytes. [`encode_index`]
//! writes what JavaScript's `JSON.stringify` writes (no spaces; only `"`, `\` and
//! control characters escaped, with the short forms `\b \f \n \r \t`, others as
//! lowercase `\u00XX`). [`parse_index`] reads any JSON array of strings; the MAC is
//! always over the bytes as received.

use super::AppStateError;

/// Settings: push name, locale, security notifications.
pub const CRITICAL_BLOCK: &str = "critical_block";
/// Contacts.
pub const CRITICAL_UNBLOCK_LOW: &str = "critical_unblock_low";
/// Pin, archive, mark read.
pub const REGULAR_LOW: &str = "regular_low";
/// Mute, star, delete for me, clear chat.
pub const REGULAR_HIGH: &str = "regular_high";
/// Labels, quick replies, protocol information.
pub const REGULAR: &str = "regular";
/// Every collection, in the order they are synced.
pub const COLLECTIONS: [&str; 5] = [
    CRITICAL_BLOCK,
    CRITICAL_UNBLOCK_LOW,
    REGULAR_LOW,
    REGULAR_HIGH,
    REGULAR,
];

const MARK_READ: &str = "markChatAsRead";
const ARCHIVE: &str = "archive";
const MUTE: &str = "mute";
const PIN: &str = "pin_v1";
const CONTACT: &str = "contact";
const SETTING: &str = "setting";

fn index2(kind: &str, arg: &str) -> Vec<String> {
    vec![kind.to_owned(), arg.to_owned()]
}

/// `["markChatAsRead", chat]` (in [`REGULAR_LOW`]).
pub fn mark_read_index(chat: &str) -> Vec<String> {
    index2(MARK_READ, chat)
}

/// `["archive", chat]` (in [`REGULAR_LOW`]).
pub fn archive_index(chat: &str) -> Vec<String> {
    index2(ARCHIVE, chat)
}

/// `["mute", chat]` (in [`REGULAR_HIGH`]).
pub fn mute_index(chat: &str) -> Vec<String> {
    index2(MUTE, chat)
}

/// `["pin_v1", chat]` (in [`REGULAR_LOW`]).
pub fn pin_index(chat: &str) -> Vec<String> {
    index2(PIN, chat)
}

/// `["contact", user]` (in [`CRITICAL_UNBLOCK_LOW`]).
pub fn contact_index(user: &str) -> Vec<String> {
    index2(CONTACT, user)
}

/// `["setting", name]` (in [`CRITICAL_BLOCK`]).
pub fn setting_index(name: &str) -> Vec<String> {
    index2(SETTING, name)
}

/// The collection an index of a known kind belongs in (`None` for other kinds).
pub fn collection_for(index: &[String]) -> Option<&'static str> {
    match index.first()?.as_str() {
        MARK_READ | ARCHIVE | PIN => Some(REGULAR_LOW),
        MUTE => Some(REGULAR_HIGH),
        CONTACT => Some(CRITICAL_UNBLOCK_LOW),
        SETTING => Some(CRITICAL_BLOCK),
        _ => None,
    }
}

/// The JSON text of an index, as `JSON.stringify` writes it.
pub fn encode_index(index: &[String]) -> String {
    let mut out = String::with_capacity(2 + index.iter().map(|s| s.len() + 3).sum::<usize>());
    out.push('[');
    for (i, s) in index.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c < ' ' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let b = c as usize;
                    out.push_str("\\u00");
                    out.push(char::from(HEX[b >> 4]));
                    out.push(char::from(HEX[b & 15]));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// Parses a JSON array of strings (whitespace allowed, any escapes; lone surrogates,
/// raw control characters, other element types and trailing bytes rejected).
pub fn parse_index(json: &str) -> Result<Vec<String>, AppStateError> {
    let mut p = Parser { s: json, i: 0 };
    p.ws();
    p.expect(b'[', "expected '['")?;
    let mut out = Vec::new();
    p.ws();
    if p.peek() == Some(b']') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            out.push(p.string()?);
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return Err(AppStateError::BadIndex("expected ',' or ']'")),
            }
        }
    }
    p.ws();
    if p.i != json.len() {
        return Err(AppStateError::BadIndex("trailing bytes"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), AppStateError> {
        match self.next() {
            Some(x) if x == b => Ok(()),
            _ => Err(AppStateError::BadIndex(what)),
        }
    }

    fn string(&mut self) -> Result<String, AppStateError> {
        self.expect(b'"', "expected a string")?;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let at = self.i;
            match self.next() {
                None => return Err(AppStateError::BadIndex("unterminated string")),
                Some(b @ (b'"' | b'\\')) => {
                    // `run..at` lies between ASCII delimiters: always char boundaries.
                    out.push_str(self.s.get(run..at).unwrap_or_default());
                    if b == b'"' {
                        return Ok(out);
                    }
                    self.escape(&mut out)?;
                    run = self.i;
                }
                Some(b) if b < 0x20 => {
                    return Err(AppStateError::BadIndex("control character in string"))
                }
                Some(_) => {}
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), AppStateError> {
        let c = match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4()?;
                let code = match hi {
                    0xd800..=0xdbff => {
                        self.expect(b'\\', "lone surrogate")?;
                        self.expect(b'u', "lone surrogate")?;
                        let lo = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&lo) {
                            return Err(AppStateError::BadIndex("lone surrogate"));
                        }
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(AppStateError::BadIndex("lone surrogate")),
                    _ => hi,
                };
                char::from_u32(code).ok_or(AppStateError::BadIndex("bad \\u escape"))?
            }
            _ => return Err(AppStateError::BadIndex("bad escape")),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, AppStateError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(AppStateError::BadIndex("bad \\u escape"))?;
            v = (v << 4) | d;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand_chacha::rand_core::{RngCore, SeedableRng};

    use super::*;

    #[test]
    fn index_json_encoding() {
        let cases: [(&[&str], &str); 5] = [
            (&[], "[]"),
            (&["", "a"], r#"["","a"]"#),
            (&["q\"b\\s/"], r#"["q\"b\\s/"]"#),
            (
                &["\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}"],
                "[\"\\n\\r\\t\\b\\f\\u0000\\u001f\u{7f}\"]",
            ),
            (&["é😀\u{2028}"], "[\"é😀\u{2028}\"]"),
        ];
        for (index, json) in cases {
            let index: Vec<String> = index.iter().map(|s| s.to_string()).collect();
            let enc = encode_index(&index);
            assert_eq!(enc, json);
            assert_eq!(enc, serde_json::to_string(&index).unwrap());
            assert_eq!(parse_index(&enc).unwrap(), index);
        }
        assert_eq!(
            parse_index(" [ \"a\\/b\" ,\n\"\\u00e9\\ud83d\\ude00\\u0041\" ] ").unwrap(),
            vec!["a/b".to_owned(), "é😀A".to_owned()]
        );
    }

    #[test]
    fn index_json_rejects_malformed_input() {
        for bad in [
            "",
            " ",
            "[",
            "]",
            "[,]",
            "[\"a\",]",
            "[\"a\"",
            "[\"a]",
            "[1]",
            "[\"a\" \"b\"]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "[\"\\u12g4\"]",
            "[\"\\ud800\"]",
            "[\"\\udc00\"]",
            "[\"\\ud800\\u0041\"]",
            "[\"\\ud800x\"]",
            "[\"a\"]x",
            "[\"a\"][]",
            "[\"\n\"]",
            "{}",
            "[null]",
            "[[\"a\"]]",
            "\"a\"",
            "[\"\\",
        ] {
            assert!(parse_index(bad).is_err(), "{bad:?}");
            assert!(
                serde_json::from_str::<Vec<String>>(bad).is_err(),
                "serde accepts {bad:?}"
            );
        }
    }

    #[test]
    fn index_json_agrees_with_serde_json() {
        // Differential test over short strings of JSON-ish characters.
        let alphabet: Vec<char> = "[]\",\\ u d8c0a1fe9/nbt\n\u{1}é".chars().collect();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = 1 + rng.next_u32() as usize % 14;
            let body: String = (0..len)
                .map(|_| alphabet[rng.next_u32() as usize % alphabet.len()])
                .collect();
            for s in [body.clone(), format!("[\"{body}"), format!("[\"{body}\"]")] {
                let ours = parse_index(&s).ok();
                let theirs = serde_json::from_str::<Vec<String>>(&s).ok();
                assert_eq!(ours, theirs, "{s:?}");
            }
        }
    }

    #[test]
    fn collections_and_index_helpers() {
        assert_eq!(
            COLLECTIONS,
            [
                "critical_block",
                "critical_unblock_low",
                "regular_low",
                "regular_high",
                "regular"
            ]
        );
        assert_eq!(mark_read_index("c"), ["markChatAsRead", "c"]);
        assert_eq!(pin_index("c"), ["pin_v1", "c"]);
        for (index, collection) in [
            (mark_read_index("c"), REGULAR_LOW),
            (archive_index("c"), REGULAR_LOW),
            (pin_index("c"), REGULAR_LOW),
            (mute_index("c"), REGULAR_HIGH),
            (contact_index("u"), CRITICAL_UNBLOCK_LOW),
            (setting_index("locale"), CRITICAL_BLOCK),
        ] {
            assert_eq!(collection_for(&index), Some(collection));
        }
        assert_eq!(collection_for(&[]), None);
        assert_eq!(collection_for(&["star".to_owned()]), None);
    }
}
