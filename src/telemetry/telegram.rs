//! The Telegram Bot API client: one `sendMessage` per call, through ureq with explicit connect
//! and overall timeouts, and what its answer means for a retry (`SendOutcome`). Plain text, no
//! `parse_mode`, so nothing needs escaping. It never retries by itself (the alert outbox does,
//! one attempt per loop turn) and never lets the bot token out: the token sits in the URL path,
//! so every error text is scrubbed of it before it leaves this module.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::debug;

use crate::config::Secret;

/// Longest the whole request may take: a down or slow Telegram costs the loop at most this
/// per turn.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the connect phase may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Telegram refuses longer messages (counted in UTF-16 code units, which bound characters).
pub const MESSAGE_UNITS_MAX: usize = 4096;
/// Appended to a message cut at `MESSAGE_UNITS_MAX` (plain `fillguard status` prints only a
/// count of alerts; the JSON has every trade and order).
const TRUNCATED: &str = "\n… (cut; `fillguard status --json` has the trade and its orders)";
/// How an alert lists a trade's orders, one a line.
const ORDER_LINE: &str = "- ";
/// Largest answer read; the Bot API's answers to `sendMessage` are a few kilobytes.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// A `retry_after` beyond this is taken as this: an alert must not wait for a day.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// What a redacted token shows as.
const TOKEN_MASK: &str = "<token>";

const _: () = assert!(CONNECT_TIMEOUT.as_millis() <= TIMEOUT.as_millis());
const _: () = assert!(TRUNCATED.len() < MESSAGE_UNITS_MAX);

/// What one `sendMessage` attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Telegram answered `ok: true`.
    Sent,
    /// A passing failure (5xx, 429, a timeout, no connection): retry, not before `after` when
    /// Telegram said so (`parameters.retry_after`).
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// Telegram refused the request itself (4xx other than 429: a wrong token or chat). Retrying
    /// cannot help until the operator fixes what `description` names.
    Failed { description: String },
    /// The request went out but no answer came in time (a timeout after connecting), or a
    /// success status came with an unreadable body: the message may have been delivered.
    /// Telegram has no idempotency key, so a retry may deliver it twice.
    Unconfirmed { error: String },
}

pub struct TelegramClient {
    agent: ureq::Agent,
    url: String,
    token: Secret,
    chat_id: Value,
}

impl TelegramClient {
    /// A client for `{base_url}/bot{token}/sendMessage` to `chat_id`; opens no connection yet.
    pub fn new(base_url: &str, token: Secret, chat_id: &str, timeout: Duration) -> TelegramClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
            // Its own bound, so a stalled lookup is told apart from a request that went out.
            .timeout_resolve(Some(timeout.min(CONNECT_TIMEOUT)))
            .max_redirects(0)
            .user_agent(concat!("fillguard/", env!("CARGO_PKG_VERSION")))
            .build();
        let chat_id = match chat_id.parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::from(chat_id),
        };
        TelegramClient {
            agent: ureq::Agent::new_with_config(config),
            url: format!(
                "{}/bot{}/sendMessage",
                base_url.trim_end_matches('/'),
                token.expose()
            ),
            token,
            chat_id,
        }
    }

    /// One bounded `sendMessage` of `text` (made to fit Telegram's limit by `fit`).
    pub fn send_message(&self, text: &str) -> SendOutcome {
        let body = json!({
            "chat_id": self.chat_id,
            "text": fit(text, MESSAGE_UNITS_MAX, None),
            "disable_web_page_preview": true,
        });
        let started = Instant::now();
        let answer = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str());
        let outcome = match answer {
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response
                    .body_mut()
                    .with_config()
                    .limit(ANSWER_BYTES_MAX)
                    .read_to_string()
                {
                    // Scrubbed before anything cuts the text, so no part of the token survives.
                    Ok(text) => classify(status, &redact(&text, self.token.expose())),
                    Err(error) if (200..300).contains(&status) => SendOutcome::Unconfirmed {
                        error: format!("telegram answered http {status}, body unreadable: {error}"),
                    },
                    Err(error) => transport(&error),
                }
            }
            Err(error) => transport(&error),
        };
        let outcome = self.redacted(outcome);
        debug!(
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome = ?outcome,
            "telegram sendMessage"
        );
        outcome
    }

    /// The outcome with every trace of the token replaced by a mask.
    fn redacted(&self, outcome: SendOutcome) -> SendOutcome {
        let token = self.token.expose();
        match outcome {
            SendOutcome::Sent => SendOutcome::Sent,
            SendOutcome::Retry { after, error } => SendOutcome::Retry {
                after,
                error: redact(&error, token),
            },
            SendOutcome::Failed { description } => SendOutcome::Failed {
                description: redact(&description, token),
            },
            SendOutcome::Unconfirmed { error } => SendOutcome::Unconfirmed {
                error: redact(&error, token),
            },
        }
    }
}

/// A failure before an answer: a timeout, no route, a refused or reset connection. All pass;
/// a timeout once the request may have gone out (waiting for or reading the answer, or the
/// overall bound past the separately bounded lookup and connect) leaves the delivery unknown.
fn transport(error: &ureq::Error) -> SendOutcome {
    use ureq::Timeout;
    match error {
        ureq::Error::Timeout(
            Timeout::RecvResponse
            | Timeout::RecvBody
            | Timeout::Global
            | Timeout::PerCall
            | Timeout::PerRead,
        ) => SendOutcome::Unconfirmed {
            error: format!("telegram timed out after the request was sent: {error}"),
        },
        ureq::Error::Timeout(_) => SendOutcome::Retry {
            after: None,
            error: format!("telegram timed out: {error}"),
        },
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => SendOutcome::Retry {
            after: None,
            error: format!("telegram timed out: {error}"),
        },
        _ => SendOutcome::Retry {
            after: None,
            error: format!("telegram no answer: {error}"),
        },
    }
}

/// What an answer means. Only `ok: true` is a delivery; the Bot API's error JSON gives the code,
/// the description and, on 429, how long to wait.
pub fn classify(status: u16, body: &str) -> SendOutcome {
    let answer: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| answer.as_ref().and_then(|answer| answer.get(name));
    let ok = field("ok").and_then(Value::as_bool) == Some(true);
    if (200..300).contains(&status) && ok {
        return SendOutcome::Sent;
    }
    let description = field("description")
        .and_then(Value::as_str)
        .map(|text| text.chars().take(200).collect::<String>())
        .unwrap_or_else(|| "no description".to_string());
    let code = field("error_code")
        .and_then(Value::as_i64)
        .unwrap_or(i64::from(status));
    match status {
        429 => {
            let after = field("parameters")
                .and_then(|parameters| parameters.get("retry_after"))
                .and_then(Value::as_u64)
                .map(|seconds| Duration::from_secs(seconds).min(RETRY_AFTER_MAX));
            SendOutcome::Retry {
                after,
                error: format!("telegram rate limit (http 429): {description}"),
            }
        }
        400..=499 => SendOutcome::Failed {
            description: format!(
                "telegram refused the message (http {status}, error_code {code}): {description}; {}",
                remedy(status)
            ),
        },
        200..=299 => SendOutcome::Retry {
            after: None,
            error: format!("telegram answered http {status} without ok: true"),
        },
        _ => SendOutcome::Retry {
            after: None,
            error: format!("telegram server error (http {status}): {description}"),
        },
    }
}

/// What the operator should fix for a refusal.
fn remedy(status: u16) -> &'static str {
    match status {
        401 | 404 => {
            "the bot token is wrong or revoked: fix the file alerts.telegram.token_file names (or $CREDENTIALS_DIRECTORY/telegram-token)"
        }
        403 => {
            "the bot may not write to this chat: add it to the group or channel, or start a chat with it"
        }
        _ => "check alerts.telegram.chat_id (the chat must exist and the bot must be in it)",
    }
}

/// `text` made to fit in `units_max` UTF-16 code units without losing what the operator must
/// read. An alert whose order list makes it too long keeps its first lines (what happened) and
/// its last (breaker, to-do); order lines go from the middle of the list, the first and the
/// latest staying, and one line says how many went and where they are (`trade_id` names the
/// journal's field). Anything else too long is cut at its tail (`truncate`).
pub fn fit(text: &str, units_max: usize, trade_id: Option<i64>) -> String {
    if units(text) <= units_max {
        return text.to_string();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let first = lines.iter().position(|line| line.starts_with(ORDER_LINE));
    let last = lines.iter().rposition(|line| line.starts_with(ORDER_LINE));
    let (Some(first), Some(last)) = (first, last) else {
        return truncate(text, units_max);
    };
    let (head, orders, tail) = (&lines[..first], &lines[first..=last], &lines[last + 1..]);
    let elision = |left_out: usize| {
        let journal = trade_id
            .map(|id| format!(" or `journalctl -u fillguard TRADE_ID={id}`"))
            .unwrap_or_default();
        format!("… {left_out} more orders: `fillguard status --json`{journal}")
    };
    // Every line costs its units and a line break; the elision line is priced at its longest.
    let cost = |line: &str| units(line) + 1;
    let mut used = head
        .iter()
        .chain(tail)
        .map(|line| cost(line))
        .sum::<usize>()
        + cost(&elision(orders.len()));
    // Order lines kept from the front and from the back, taken in turn while they fit.
    let (mut front, mut back) = (0, 0);
    while front + back < orders.len() {
        let next = if front <= back {
            orders[front]
        } else {
            orders[orders.len() - 1 - back]
        };
        if used + cost(next) > units_max + 1 {
            break;
        }
        used += cost(next);
        if front <= back {
            front += 1;
        } else {
            back += 1;
        }
    }
    let left_out = orders.len() - front - back;
    let elided = elision(left_out);
    let kept: Vec<&str> = head
        .iter()
        .chain(&orders[..front])
        .copied()
        .chain((left_out > 0).then_some(elided.as_str()))
        .chain(orders[orders.len() - back..].iter().copied())
        .chain(tail.iter().copied())
        .collect();
    // Should the head and tail alone be too long, the tail cut is the last resort.
    truncate(&kept.join("\n"), units_max)
}

fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` cut on a character boundary so that it fits in `units_max` UTF-16 code units with
/// the cut marker.
pub fn truncate(text: &str, units_max: usize) -> String {
    if text.encode_utf16().count() <= units_max {
        return text.to_string();
    }
    let budget = units_max.saturating_sub(TRUNCATED.encode_utf16().count());
    let mut used = 0;
    let mut end = 0;
    for (index, character) in text.char_indices() {
        used += character.len_utf16();
        if used > budget {
            break;
        }
        end = index + character.len_utf8();
    }
    format!("{}{TRUNCATED}", &text[..end])
}

/// `text` with every occurrence of `token` (and of its secret half after the colon, which is
/// what identifies the bot to anyone holding it) replaced by a mask.
pub fn redact(text: &str, token: &str) -> String {
    let mut text = text.replace(token, TOKEN_MASK);
    if let Some((_, secret)) = token.split_once(':') {
        if secret.len() >= 8 {
            text = text.replace(secret, TOKEN_MASK);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ok_true_is_sent() {
        let sent = r#"{"ok":true,"result":{"message_id":7}}"#;
        assert_eq!(classify(200, sent), SendOutcome::Sent);
        assert!(matches!(
            classify(200, r#"{"ok":false}"#),
            SendOutcome::Retry { .. }
        ));
        assert!(matches!(
            classify(200, "<html>proxy</html>"),
            SendOutcome::Retry { .. }
        ));
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let body = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}"#;
        assert_eq!(
            classify(429, body),
            SendOutcome::Retry {
                after: Some(Duration::from_secs(17)),
                error: "telegram rate limit (http 429): Too Many Requests: retry after 17".into(),
            }
        );
        let huge = r#"{"ok":false,"parameters":{"retry_after":999999}}"#;
        assert!(matches!(
            classify(429, huge),
            SendOutcome::Retry { after: Some(after), .. } if after == RETRY_AFTER_MAX
        ));
    }

    #[test]
    fn server_errors_retry_and_refusals_fail_naming_the_fix() {
        assert!(matches!(
            classify(502, "bad gateway"),
            SendOutcome::Retry { after: None, .. }
        ));
        let body = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        let SendOutcome::Failed { description } = classify(401, body) else {
            panic!("401 is a refusal");
        };
        assert!(description.contains("Unauthorized"), "{description}");
        assert!(
            description.contains("alerts.telegram.token_file"),
            "{description}"
        );
        let body = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        let SendOutcome::Failed { description } = classify(400, body) else {
            panic!("400 is a refusal");
        };
        assert!(
            description.contains("alerts.telegram.chat_id"),
            "{description}"
        );
    }

    #[test]
    fn a_long_order_list_loses_its_middle_and_keeps_head_breaker_and_to_do() {
        let mut text = String::from(
            "🔴 CRITICAL PROTECTION FAILURE BTC_USDT trade 7: protection_rejected\n\
             BUY filled 0.00161 at 62047.12\nWhy: rejected (code 229): INVALID_REF_PRICE\nOrders:",
        );
        let orders = 200;
        for n in 0..orders {
            // Wide characters, so UTF-16 units and bytes differ and a cut could split one.
            text.push_str(&format!(
                "\n- STOP_LOSS order_id=- client_oid=fg-597e69dc-7-S{n} NOT_PLACED: 拒否 🔴"
            ));
        }
        text.push_str("\nBreaker for BTC_USDT OPEN (no new entries).\nTo do: protect by hand");
        assert!(units(&text) > MESSAGE_UNITS_MAX);
        let fitted = fit(&text, MESSAGE_UNITS_MAX, Some(7));
        assert!(units(&fitted) <= MESSAGE_UNITS_MAX, "{}", units(&fitted));
        let lines: Vec<&str> = fitted.lines().collect();
        assert!(lines[0].starts_with("🔴 CRITICAL PROTECTION FAILURE BTC_USDT trade 7:"));
        assert_eq!(lines[3], "Orders:");
        assert_eq!(
            lines[lines.len() - 2],
            "Breaker for BTC_USDT OPEN (no new entries)."
        );
        assert_eq!(lines[lines.len() - 1], "To do: protect by hand");
        // The first order and the latest stay; the elision says how many went and where.
        assert!(lines[4].contains("-S0 "), "{}", lines[4]);
        assert!(lines[lines.len() - 3].contains("-S199 "));
        let kept = lines.iter().filter(|line| line.starts_with("- ")).count();
        let elision = lines.iter().find(|line| line.starts_with("… ")).unwrap();
        assert_eq!(
            *elision,
            format!(
                "… {} more orders: `fillguard status --json` or `journalctl -u fillguard TRADE_ID=7`",
                orders - kept
            )
        );
        // Every kept line is an original line, whole.
        assert!(
            lines
                .iter()
                .all(|line| *line == *elision || text.contains(line))
        );
        assert!(kept > 40, "{kept} order lines kept");
        // Short enough already: unchanged.
        assert_eq!(
            fit("short\n- a\nTo do: x", MESSAGE_UNITS_MAX, Some(1)),
            "short\n- a\nTo do: x"
        );
    }

    #[test]
    fn a_long_message_without_an_order_list_is_cut_at_its_tail() {
        let text = format!("head\n{}", "🔴".repeat(3000));
        let fitted = fit(&text, MESSAGE_UNITS_MAX, None);
        assert!(units(&fitted) <= MESSAGE_UNITS_MAX);
        assert!(fitted.starts_with("head\n🔴"));
        assert!(fitted.ends_with("`fillguard status --json` has the trade and its orders)"));
    }

    #[test]
    fn truncation_keeps_characters_whole_and_fits_the_limit() {
        let text = "🔴".repeat(3000);
        let cut = truncate(&text, MESSAGE_UNITS_MAX);
        assert!(cut.encode_utf16().count() <= MESSAGE_UNITS_MAX);
        assert!(cut.ends_with(TRUNCATED));
        assert!(cut.trim_end_matches(TRUNCATED).chars().all(|c| c == '🔴'));
        assert_eq!(truncate("short", MESSAGE_UNITS_MAX), "short");
        let exact = "a".repeat(MESSAGE_UNITS_MAX);
        assert_eq!(truncate(&exact, MESSAGE_UNITS_MAX), exact);
    }

    #[test]
    fn redaction_removes_the_token_and_its_secret_half() {
        let token = "123456:AAH-secret_part";
        let text = "http://h/bot123456:AAH-secret_part/sendMessage and AAH-secret_part";
        let clean = redact(text, token);
        assert!(!clean.contains("AAH-secret_part"), "{clean}");
        assert!(clean.contains("/bot<token>/sendMessage"), "{clean}");
    }
}
