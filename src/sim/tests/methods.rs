//! The simulator's request handling for what a spot client sends beyond placing and reading
//! orders: signatures over any params, amend, cancel-all, trades, fee rates and history paging.
//! Each method is also tried with a bad request.

use super::*;

/// The rate limit of `get-trades` and `get-order-history` is one call per second.
const HISTORY_PACE: Duration = Duration::from_millis(1_050);

fn limit_buy(client_oid: &str, price: &str) -> Value {
    json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "LIMIT",
           "quantity": "0.5", "price": price, "client_oid": client_oid})
}

fn data(body: &Value) -> Vec<Value> {
    body["result"]["data"]
        .as_array()
        .expect("result.data")
        .clone()
}

#[test]
fn signature_covers_nulls_numbers_and_nested_lists_as_sent() {
    let (_server, client) = start(1, "none");
    let params = json!({"isolation_id": null, "ratio": 0.1, "limit": 100, "flag": true,
        "legs": [{"side": "SELL", "exec_inst": ["POST_ONLY"], "sizes": [1, null]}],
        "nested": {"b": "x", "a": false}});
    let (status, body) = client.private("private/user-balance", params.clone());
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    let nonce = u64::try_from(wall_now_ms()).unwrap();
    let mut tampered = client.envelope("private/user-balance", params, nonce, API_SECRET);
    tampered["params"]["legs"][0]["sizes"][1] = json!(0);
    let (status, text) = client
        .post_raw("/exchange/v1/private/user-balance", &tampered)
        .unwrap();
    assert_eq!(
        (status, code(&serde_json::from_str(&text).unwrap())),
        (401, 40101)
    );
    let mut padded = client.envelope("private/user-balance", json!({}), nonce, API_SECRET);
    padded["id"] = json!("0042");
    let payload = sign::payload_as_sent(
        "private/user-balance",
        "0042",
        API_KEY,
        &json!({}),
        &nonce.to_string(),
    );
    padded["sig"] = json!(sign::hex_hmac(API_SECRET, &payload));
    let (status, text) = client
        .post_raw("/exchange/v1/private/user-balance", &padded)
        .unwrap();
    assert_eq!(status, 200, "an id is signed as written: {text}");
}

#[test]
fn amend_order_changes_a_resting_limit_order_in_place() {
    let (_server, client) = start(1, "none");
    let (_, created) = client.private("private/create-order", limit_buy("lim", "90"));
    let order_id = created["result"]["order_id"].as_str().unwrap().to_string();
    let amend = json!({"orig_client_oid": "lim", "new_price": "80", "new_quantity": "1",
                       "client_oid": "lim-2"});
    let (status, body) = client.private("private/amend-order", amend);
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    assert_eq!(
        body["result"],
        json!({"client_oid": "lim-2", "order_id": order_id})
    );
    let (_, detail) = client.private("private/get-order-detail", json!({"order_id": order_id}));
    let order = &detail["result"];
    assert_eq!(
        (order["limit_price"].as_str(), order["quantity"].as_str()),
        (Some("80"), Some("1"))
    );
    assert_eq!(order["client_oid"], "lim-2");
    let missing = json!({"order_id": order_id, "new_price": "81"});
    let (status, body) = client.private("private/amend-order", missing);
    assert_eq!(
        (status, code(&body)),
        (400, 40004),
        "both values are required"
    );
    let unknown = json!({"order_id": "42", "new_price": "81", "new_quantity": "1"});
    let (status, body) = client.private("private/amend-order", unknown);
    assert_eq!((status, code(&body)), (500, 212));
}

#[test]
fn cancel_all_orders_per_namespace_instrument_and_type() {
    let (_server, client) = start(1, "none");
    client.private("private/create-order", limit_buy("a", "90"));
    client.private("private/create-order", limit_buy("b", "91"));
    client.private("private/advanced/create-oco", oco_params());
    let all_plain = json!({"instrument_name": "BTC_USD"});
    let (status, body) = client.private("private/cancel-all-orders", all_plain);
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    assert!(body.get("result").is_none(), "no result block: {body}");
    let (_, plain) = client.private("private/get-open-orders", json!({}));
    assert!(data(&plain).is_empty());
    let (_, advanced) = client.private("private/advanced/get-open-orders", json!({}));
    assert_eq!(
        data(&advanced).len(),
        2,
        "advanced orders are another namespace"
    );
    let triggers = json!({"type": "TRIGGER"});
    let (_, body) = client.private("private/advanced/cancel-all-orders", triggers);
    assert_eq!(code(&body), 0, "{body}");
    assert_eq!(client.book_entry("sl").unwrap()["status"], "CANCELED");
    assert_eq!(client.book_entry("tp").unwrap()["status"], "ACTIVE");
    client.private("private/advanced/cancel-all-orders", json!({}));
    assert_eq!(client.book_entry("tp").unwrap()["status"], "CANCELED");
    let (status, body) = client.private(
        "private/cancel-all-orders",
        json!({"instrument_name": "DOGE_USD"}),
    );
    assert_eq!((status, code(&body)), (400, 209));
    let (_, body) = client.private("private/cancel-all-orders", json!({"type": "MARKET"}));
    assert_eq!(code(&body), 40004);
}

#[test]
fn get_trades_reports_each_fill_with_its_fee_and_pages_back() {
    let (_server, client) = start(1, "none");
    client.private("private/create-order", market_buy("t1", "0.5"));
    client.private("private/create-order", market_buy("t2", "0.2"));
    client.wait_terminal("private/get-order-detail", "t2");
    client.wait_terminal("private/get-order-detail", "t1");
    let (status, body) = client.private("private/get-trades", json!({"limit": 1}));
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    let newest = &data(&body)[0];
    assert_eq!(newest["client_oid"], "t2");
    assert_eq!(newest["traded_quantity"], "0.2");
    assert_eq!(newest["traded_price"], "100");
    assert_eq!(newest["fees"], "-0.0002");
    assert_eq!(newest["fee_instrument_name"], "BTC");
    assert_eq!(newest["taker_side"], "TAKER");
    assert_eq!(newest["journal_type"], "TRADING");
    assert!(newest["create_time"].is_i64() && newest["trade_id"].is_string());
    std::thread::sleep(HISTORY_PACE);
    let older = json!({"end_time": newest["create_time_ns"], "instrument_name": "BTC_USD"});
    let (_, body) = client.private("private/get-trades", older);
    let rows = data(&body);
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(
        (rows[0]["client_oid"].as_str(), rows[0]["fees"].as_str()),
        (Some("t1"), Some("-0.0005"))
    );
    std::thread::sleep(HISTORY_PACE);
    let (status, body) = client.private("private/get-trades", json!({"start_time": 0}));
    assert_eq!((status, code(&body)), (400, 40004), "more than 7 days");
}

#[test]
fn order_history_pages_by_create_time_ns() {
    let (_server, client) = start(1, "none");
    for client_oid in ["h1", "h2", "h3"] {
        client.private("private/create-order", limit_buy(client_oid, "90"));
        client.private("private/cancel-order", json!({"client_oid": client_oid}));
    }
    let (_, first) = client.private("private/get-order-history", json!({"limit": 2}));
    let rows = data(&first);
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row["client_oid"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h3", "h2"]);
    std::thread::sleep(HISTORY_PACE);
    let next = json!({"limit": 2, "end_time": rows[1]["create_time_ns"]});
    let (_, second) = client.private("private/get-order-history", next);
    let names: Vec<Value> = data(&second)
        .iter()
        .map(|row| row["client_oid"].clone())
        .collect();
    assert_eq!(names, [json!("h1")]);
    std::thread::sleep(HISTORY_PACE);
    let (status, body) = client.private("private/get-order-history", json!({"start_time": "soon"}));
    assert_eq!((status, code(&body)), (400, 40004));
}

#[test]
fn fee_rates_in_basis_points() {
    let (_server, client) = start(1, "none");
    let (status, body) = client.private("private/get-fee-rate", json!({}));
    assert_eq!((status, code(&body)), (200, 0), "{body}");
    assert_eq!(body["result"]["effective_spot_taker_rate_bps"], "10");
    assert_eq!(body["result"]["effective_spot_maker_rate_bps"], "10");
    let one = json!({"instrument_name": "BTC_USD"});
    let (_, body) = client.private("private/get-instrument-fee-rate", one);
    assert_eq!(
        body["result"],
        json!({"instrument_name": "BTC_USD", "effective_maker_rate_bps": "10",
               "effective_taker_rate_bps": "10"})
    );
    let (_, body) = client.private("private/get-instrument-fee-rate", json!({}));
    assert_eq!(code(&body), 40004);
    let unknown = json!({"instrument_name": "DOGE_USD"});
    let (_, body) = client.private("private/get-instrument-fee-rate", unknown);
    assert_eq!(code(&body), 209);
}
