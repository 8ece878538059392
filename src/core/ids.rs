//! Deterministic client order ids: `fg-{epoch}-{trade_id}-{role letter}{generation}`. The same
//! intent always gets the same id, so a retry after a crash or a timeout hits the exchange's
//! duplicate check instead of creating a second order. The epoch is a random token created once
//! with the database, so a fresh or restored database never reuses an earlier one's ids on the
//! same account. Trades of databases older than epochs keep `fg-{trade_id}-{letter}{generation}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const CLIENT_OID_PREFIX: &str = "fg-";
/// Crypto.com accepts client_oids of at most 36 characters.
pub const CLIENT_OID_LENGTH_MAX: usize = 36;
/// An epoch is this many lowercase hexadecimal characters.
pub const EPOCH_LENGTH: usize = 8;
/// Trade ids and generations are validated against these when a trade is loaded, so every id
/// fits the exchange's limit.
pub const TRADE_ID_MAX: i64 = 999_999_999_999;
pub const GENERATION_MAX: u32 = 999_999_999;
// "fg-" + epoch + "-" + 12 digits + "-" + letter + 9 digits.
const _: () = assert!(3 + EPOCH_LENGTH + 1 + 12 + 1 + 1 + 9 <= CLIENT_OID_LENGTH_MAX);

/// Whether `epoch` is a valid epoch: empty (a trade of a database older than epochs) or
/// `EPOCH_LENGTH` lowercase hexadecimal characters.
pub fn is_valid_epoch(epoch: &str) -> bool {
    epoch.is_empty()
        || (epoch.len() == EPOCH_LENGTH
            && epoch
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Entry,
    StopLoss,
    TakeProfit,
    Exit,
}

impl Role {
    pub fn letter(self) -> char {
        match self {
            Role::Entry => 'E',
            Role::StopLoss => 'S',
            Role::TakeProfit => 'T',
            Role::Exit => 'X',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Entry => "ENTRY",
            Role::StopLoss => "STOP_LOSS",
            Role::TakeProfit => "TAKE_PROFIT",
            Role::Exit => "EXIT",
        }
    }

    pub fn is_protective(self) -> bool {
        matches!(self, Role::StopLoss | Role::TakeProfit)
    }

    fn from_letter(letter: char) -> Option<Role> {
        match letter {
            'E' => Some(Role::Entry),
            'S' => Some(Role::StopLoss),
            'T' => Some(Role::TakeProfit),
            'X' => Some(Role::Exit),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ENTRY" => Ok(Role::Entry),
            "STOP_LOSS" => Ok(Role::StopLoss),
            "TAKE_PROFIT" => Ok(Role::TakeProfit),
            "EXIT" => Ok(Role::Exit),
            _ => Err(format!("unknown order role {text:?}")),
        }
    }
}

/// The client_oid of one intent. `epoch`, `trade_id` and `generation` are validated when the
/// trade is loaded (`is_valid_epoch`, `TRADE_ID_MAX`, `GENERATION_MAX`).
pub fn client_oid(epoch: &str, trade_id: i64, role: Role, generation: u32) -> String {
    assert!(
        (1..=TRADE_ID_MAX).contains(&trade_id) && generation <= GENERATION_MAX,
        "trade ids and generations are validated on load"
    );
    assert!(is_valid_epoch(epoch), "epochs are validated on load");
    let oid = if epoch.is_empty() {
        format!(
            "{CLIENT_OID_PREFIX}{trade_id}-{}{generation}",
            role.letter()
        )
    } else {
        format!(
            "{CLIENT_OID_PREFIX}{epoch}-{trade_id}-{}{generation}",
            role.letter()
        )
    };
    assert!(oid.len() <= CLIENT_OID_LENGTH_MAX);
    oid
}

/// One parsed fillguard client_oid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOid {
    /// Empty for ids of databases older than epochs.
    pub epoch: String,
    pub trade_id: i64,
    pub role: Role,
    pub generation: u32,
}

/// The parts of a fillguard client_oid, or `None` for any other id.
pub fn parse_client_oid(oid: &str) -> Option<ParsedOid> {
    let rest = oid.strip_prefix(CLIENT_OID_PREFIX)?;
    let (epoch, rest) = match rest.split_once('-') {
        Some((first, tail)) if first.len() == EPOCH_LENGTH && tail.contains('-') => (first, tail),
        _ => ("", rest),
    };
    let (trade, tail) = rest.split_once('-')?;
    let trade_id: i64 = trade
        .parse()
        .ok()
        .filter(|id| (1..=TRADE_ID_MAX).contains(id))?;
    let mut chars = tail.chars();
    let role = Role::from_letter(chars.next()?)?;
    let generation: u32 = chars
        .as_str()
        .parse()
        .ok()
        .filter(|generation| *generation <= GENERATION_MAX)?;
    if !is_valid_epoch(epoch) || client_oid(epoch, trade_id, role, generation) != oid {
        return None;
    }
    Some(ParsedOid {
        epoch: epoch.to_string(),
        trade_id,
        role,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_oid_has_the_documented_shape() {
        assert_eq!(
            client_oid("0a1b2c3d", 42, Role::StopLoss, 0),
            "fg-0a1b2c3d-42-S0"
        );
        assert_eq!(client_oid("", 7, Role::Entry, 3), "fg-7-E3");
        let longest = client_oid("ffffffff", TRADE_ID_MAX, Role::TakeProfit, GENERATION_MAX);
        assert!(longest.len() <= CLIENT_OID_LENGTH_MAX, "{longest}");
        // The exchange accepts letters, digits and '-' in a client_oid.
        assert!(
            longest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
    }

    #[test]
    fn ids_of_databases_without_an_epoch_still_parse() {
        let parsed = parse_client_oid("fg-12-S3").unwrap();
        assert_eq!((parsed.epoch.as_str(), parsed.trade_id), ("", 12));
        assert_eq!((parsed.role, parsed.generation), (Role::StopLoss, 3));
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        assert_eq!(parse_client_oid("agent-0001"), None);
        assert_eq!(parse_client_oid("fg-0-E0"), None);
        assert_eq!(parse_client_oid("fg-01-E0"), None);
        assert_eq!(parse_client_oid("fg-1-Q0"), None);
        assert_eq!(parse_client_oid("fg-1-E"), None);
        assert_eq!(parse_client_oid("fg-ABCDEF12-1-E0"), None);
        assert_eq!(parse_client_oid("fg-0a1b2c3-1-E0"), None);
        assert_eq!(parse_client_oid("fg-0a1b2c3d-0-E0"), None);
    }

    proptest! {
        #[test]
        fn client_oid_round_trips(
            epoch in "([0-9a-f]{8})?",
            trade_id in 1i64..=TRADE_ID_MAX,
            generation in 0u32..=GENERATION_MAX,
            role_index in 0usize..4,
        ) {
            let role = [Role::Entry, Role::StopLoss, Role::TakeProfit, Role::Exit][role_index];
            let oid = client_oid(&epoch, trade_id, role, generation);
            prop_assert!(oid.len() <= CLIENT_OID_LENGTH_MAX);
            let parsed = parse_client_oid(&oid).unwrap();
            prop_assert_eq!((parsed.epoch, parsed.trade_id, parsed.role, parsed.generation),
                (epoch, trade_id, role, generation));
        }
    }
}
