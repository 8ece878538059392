//! Deterministic client order ids: `fg-{trade_id}-{role letter}{generation}`. The same intent
//! always gets the same id, so a retry after a crash or a timeout hits the exchange's duplicate
//! check instead of creating a second order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const CLIENT_OID_PREFIX: &str = "fg-";
/// Crypto.com accepts client_oids of at most 36 characters.
pub const CLIENT_OID_LENGTH_MAX: usize = 36;
// "fg-" + 19 digits of i64 + "-" + letter + 10 digits of u32.
const _: () = assert!(3 + 19 + 1 + 1 + 10 <= CLIENT_OID_LENGTH_MAX);

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

pub fn client_oid(trade_id: i64, role: Role, generation: u32) -> String {
    assert!(trade_id > 0, "trade ids start at 1");
    let oid = format!(
        "{CLIENT_OID_PREFIX}{trade_id}-{}{generation}",
        role.letter()
    );
    assert!(oid.len() <= CLIENT_OID_LENGTH_MAX);
    oid
}

/// The parts of a fillguard client_oid, or `None` for any other id.
pub fn parse_client_oid(oid: &str) -> Option<(i64, Role, u32)> {
    let rest = oid.strip_prefix(CLIENT_OID_PREFIX)?;
    let (trade, tail) = rest.split_once('-')?;
    let trade_id: i64 = trade.parse().ok().filter(|id| *id > 0)?;
    let mut chars = tail.chars();
    let role = Role::from_letter(chars.next()?)?;
    let generation: u32 = chars.as_str().parse().ok()?;
    if client_oid(trade_id, role, generation) != oid {
        return None;
    }
    Some((trade_id, role, generation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_oid_has_the_documented_shape() {
        assert_eq!(client_oid(42, Role::StopLoss, 0), "fg-42-S0");
        assert_eq!(client_oid(7, Role::Entry, 3), "fg-7-E3");
        let longest = client_oid(i64::MAX, Role::TakeProfit, u32::MAX);
        assert!(longest.len() <= CLIENT_OID_LENGTH_MAX, "{longest}");
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        assert_eq!(parse_client_oid("agent-0001"), None);
        assert_eq!(parse_client_oid("fg-0-E0"), None);
        assert_eq!(parse_client_oid("fg-01-E0"), None);
        assert_eq!(parse_client_oid("fg-1-Q0"), None);
        assert_eq!(parse_client_oid("fg-1-E"), None);
    }

    proptest! {
        #[test]
        fn client_oid_round_trips(trade_id in 1i64..i64::MAX, generation in 0u32..u32::MAX, role_index in 0usize..4) {
            let role = [Role::Entry, Role::StopLoss, Role::TakeProfit, Role::Exit][role_index];
            let oid = client_oid(trade_id, role, generation);
            prop_assert!(oid.len() <= CLIENT_OID_LENGTH_MAX);
            prop_assert_eq!(parse_client_oid(&oid), Some((trade_id, role, generation)));
        }
    }
}
