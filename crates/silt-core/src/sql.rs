//! SQL identifiers and literals.
//!
//! Silt never splices data into SQL: identifiers (dataset, column and model
//! names) are checked against a strict pattern and then quoted; literals are
//! quoted with doubled single quotes. Both rules hold in Trino and DataFusion.

/// Longest identifier accepted; Glue and Athena cap names at 255 bytes.
pub const MAX_IDENTIFIER_LEN: usize = 128;

/// The bytes an identifier may hold after its first: ASCII letters, digits
/// and `_`. A table, because every column of every change is checked.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

/// Whether `name` passes [`check_identifier`], without building the reason.
pub fn is_identifier(name: &str) -> bool {
    match name.as_bytes() {
        [first, rest @ ..] => {
            name.len() <= MAX_IDENTIFIER_LEN
                && (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| WORD_BYTES[usize::from(*b)])
        }
        [] => false,
    }
}

/// Checks that `name` is a plain identifier: a letter or `_`, then letters, digits or `_`.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if is_identifier(name) {
        return Ok(());
    }
    let Some(first) = name.chars().next() else {
        return Err("must not be empty".to_string());
    };
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "`{}…` is longer than {MAX_IDENTIFIER_LEN} bytes",
            &name[..16]
        ));
    }
    // Bytes, not chars: every byte of a non-ASCII character fails the test too.
    if !(first.is_ascii_alphabetic() || first == '_')
        || !name.bytes().all(|b| WORD_BYTES[usize::from(b)])
    {
        return Err(format!(
            "`{}` may only hold ASCII letters, digits and `_`, and must not start with a digit",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Quotes a checked identifier with double quotes (Trino and DataFusion both accept them).
///
/// Callers pass names that went through [`check_identifier`]; a stray `"` is
/// still doubled so a missed check can never break out of the quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(check_identifier("order_id").is_ok());
        assert!(check_identifier("_x1").is_ok());
        for bad in ["", "1a", "a-b", "a b", "a\"b", "a;drop", "é", "a.b", "aé"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_identifier("_x1") && is_identifier(&"a".repeat(MAX_IDENTIFIER_LEN)));
        assert!(!is_identifier(&"a".repeat(MAX_IDENTIFIER_LEN + 1)));
        assert!(check_identifier(&"a".repeat(200)).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
