//! The commit-position cookie of a bind with read replicas: after a request commits a write,
//! the response carries the primary's WAL position, signed; the same client's later reads go
//! only to replicas known to have replayed it (read-your-writes across requests, with no code
//! in the app and nothing stored on the server).

use base64::Engine;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The cookie's name for bind `key`.
pub(crate) fn cookie_name(key: &str) -> String {
    format!("ra_pos_{key}")
}

fn mac(secret: &[u8], key: &str, position: u64) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"rocket_alchemy position\0");
    mac.update(key.as_bytes());
    mac.update(b"\0");
    mac.update(&position.to_be_bytes());
    mac
}

/// `position` for bind `key`, signed with `secret`: `<hex position>.<base64url tag>`.
pub(crate) fn encode(secret: &[u8], key: &str, position: u64) -> String {
    let tag = mac(secret, key, position).finalize().into_bytes();
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16]);
    format!("{position:x}.{tag}")
}

/// The position in a cookie value, if its signature holds.
pub(crate) fn decode(secret: &[u8], key: &str, value: &str) -> Option<u64> {
    let (position, tag) = value.split_once('.')?;
    let position = u64::from_str_radix(position, 16).ok()?;
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tag)
        .ok()
        .filter(|tag| tag.len() == 16)?;
    mac(secret, key, position)
        .verify_truncated_left(&tag)
        .ok()
        .map(|()| position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let value = encode(b"secret", "default", 0x16_B374_D848);
        assert_eq!(decode(b"secret", "default", &value), Some(0x16_B374_D848));
        assert_eq!(decode(b"other", "default", &value), None, "another key");
        assert_eq!(decode(b"secret", "audit", &value), None, "another bind");
        let (_, tag) = value.split_once('.').unwrap();
        assert_eq!(
            decode(b"secret", "default", &format!("ffffffffff.{tag}")),
            None
        );
        assert_eq!(decode(b"secret", "default", "12"), None);
        assert_eq!(
            decode(b"secret", "default", "12.AAAA"),
            None,
            "short tags do not pass"
        );
    }
}
