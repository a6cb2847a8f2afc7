//! Lowercase hex, as captures and corpora store datagrams.

use core::fmt::Write as _;

/// `bytes` as lowercase hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes of a hex string (either case, no separators).
///
/// # Errors
/// [`super::Error::BadValue`] naming the first offending position: an
/// odd length, or a character that is not a hex digit.
pub fn decode(text: &str) -> super::Result<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 != 0 {
        return Err(super::Error::BadValue {
            what: "hex string length",
            value: t.len() as u64,
        });
    }
    t.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(super::Error::BadValue {
                    what: "hex digit at byte",
                    value: i as u64,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_round_trip() {
        let b = [0x00, 0x1f, 0xa0, 0xff];
        assert_eq!(encode(&b), "001fa0ff");
        assert_eq!(decode("001fA0ff").unwrap(), b);
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn test_bad_input() {
        assert!(decode("abc").is_err());
        assert!(decode("0g").is_err());
        assert!(decode("é1").is_err());
    }
}
