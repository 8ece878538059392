//! Orders in: creation (single, OCO, OTOCO), amendment and cancellation (one order, one list,
//! every order a filter selects), with the synchronous checks in the order Crypto.com reports
//! them: shape and request checks (`validate`), duplicates (204), protective rejections,
//! balance (306) and capacity (318). Accepted orders are inserted here; they fill in `matching`.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::core::domain::{
    Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest, OrderType, Side, VenueStatus,
};

use super::super::validate::{self, is_trigger};
use super::{
    CODE_DUPLICATE_CLIENT_OID, CODE_INSUFFICIENT_BALANCE, CODE_INVALID_ARGUMENT,
    CODE_INVALID_ORDER_ID, CODE_INVALID_QUANTITY, CODE_NO_ACTIVE_ORDER, CODE_TOO_MANY_ORDERS,
    Engine, EngineReject, OPEN_ORDERS_MAX, ORDER_ID_FIRST, Order, Role,
};

/// A change of an open LIMIT order (Crypto.com's `amend-order`): both the new price and the new
/// total quantity are given, at least one of them different.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmendRequest {
    pub order_id: String,
    /// The order's client_oid from now on; `None` keeps the current one.
    pub new_client_oid: Option<String>,
    pub new_price: Decimal,
    /// The new total quantity, filled part included.
    pub new_quantity: Decimal,
}

impl Engine {
    pub fn create_order(
        &mut self,
        now_ms: Millis,
        request: &OrderRequest,
    ) -> Result<OrderAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[request])?;
        let instrument = self.instrument(&request.symbol)?;
        if is_trigger(request.order_type) {
            self.check_protective_allowed(&request.symbol)?;
        }
        let last_price = self.price_of(&request.symbol);
        validate::check_request(request, &instrument, last_price)?;
        let funds = self.required_funds(request, &instrument, last_price);
        if !is_trigger(request.order_type) {
            self.check_funds(&funds.0, funds.1)?;
        }
        self.check_capacity(1)?;
        let index = self.insert_order(now_ms, request, Role::Single, None);
        if !is_trigger(request.order_type) {
            self.reserve(index, funds.1);
        }
        Ok(OrderAck {
            order_id: self.orders[index].report.order_id.clone(),
            client_oid: request.client_oid.clone(),
        })
    }

    /// A STOP_LOSS and a TAKE_PROFIT (or LIMIT) leg on the same symbol and side; all or nothing.
    pub fn create_oco(
        &mut self,
        now_ms: Millis,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[stop_loss, take_profit])?;
        let instrument = self.instrument(&stop_loss.symbol)?;
        self.check_protective_allowed(&stop_loss.symbol)?;
        check_oco_shape(stop_loss, take_profit)?;
        let last_price = self.price_of(&stop_loss.symbol);
        validate::check_request(stop_loss, &instrument, last_price)?;
        validate::check_request(take_profit, &instrument, last_price)?;
        let (asset, stop_amount) = self.required_funds(stop_loss, &instrument, last_price);
        let (_, profit_amount) = self.required_funds(take_profit, &instrument, last_price);
        // Both legs spend the same coins and at most one fills: check the larger once.
        self.check_funds(&asset, stop_amount.max(profit_amount))?;
        self.check_capacity(2)?;
        let list_id = self.take_list_id();
        let stop_index = self.insert_order(now_ms, stop_loss, Role::OcoLeg, Some(&list_id));
        let profit_index = self.insert_order(now_ms, take_profit, Role::OcoLeg, Some(&list_id));
        if take_profit.order_type == OrderType::Limit {
            self.reserve(profit_index, profit_amount);
        }
        self.lists
            .insert(list_id.clone(), vec![stop_index, profit_index]);
        Ok(ListAck { list_id })
    }

    /// An entry (MARKET or LIMIT) plus STOP_LOSS and TAKE_PROFIT legs of the opposite side that
    /// stay PENDING and unarmed until the entry is completely FILLED; then they act as an OCO.
    pub fn create_otoco(
        &mut self,
        now_ms: Millis,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[entry, stop_loss, take_profit])?;
        let instrument = self.instrument(&entry.symbol)?;
        self.check_protective_allowed(&entry.symbol)?;
        check_otoco_shape(entry, stop_loss, take_profit)?;
        let last_price = self.price_of(&entry.symbol);
        validate::check_request(entry, &instrument, last_price)?;
        // The legs are judged against the price the entry is expected to fill at.
        let reference_price = entry.price.unwrap_or(last_price);
        validate::check_request(stop_loss, &instrument, reference_price)?;
        validate::check_request(take_profit, &instrument, reference_price)?;
        let (asset, amount) = self.required_funds(entry, &instrument, last_price);
        self.check_funds(&asset, amount)?;
        self.check_capacity(3)?;
        let list_id = self.take_list_id();
        let entry_index = self.insert_order(now_ms, entry, Role::OtocoEntry, Some(&list_id));
        let stop_index = self.insert_order(now_ms, stop_loss, Role::OtocoLeg, Some(&list_id));
        let profit_index = self.insert_order(now_ms, take_profit, Role::OtocoLeg, Some(&list_id));
        self.reserve(entry_index, amount);
        self.lists
            .insert(list_id.clone(), vec![entry_index, stop_index, profit_index]);
        Ok(ListAck { list_id })
    }

    /// Cancels one open order (for a list member, only that member). 212 when unknown, 316 when
    /// it is no longer open.
    pub fn cancel_order(&mut self, now_ms: Millis, order_id: &str) -> Result<(), EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let Some(&index) = self.index_by_order_id.get(order_id) else {
            return Err(EngineReject::new(
                CODE_INVALID_ORDER_ID,
                format!("unknown order_id {order_id}"),
            ));
        };
        if !self.open.contains(&index) {
            return Err(EngineReject::new(
                CODE_NO_ACTIVE_ORDER,
                format!("order {order_id} is not open"),
            ));
        }
        self.finish(index, VenueStatus::Canceled, None, now_ms);
        Ok(())
    }

    /// Cancels every open member of a list. 212 when unknown, 316 when none is open.
    pub fn cancel_list(&mut self, now_ms: Millis, list_id: &str) -> Result<(), EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let Some(members) = self.lists.get(list_id) else {
            return Err(EngineReject::new(
                CODE_INVALID_ORDER_ID,
                format!("unknown list_id {list_id}"),
            ));
        };
        let open_members: Vec<usize> = members
            .iter()
            .copied()
            .filter(|index| self.open.contains(index))
            .collect();
        if open_members.is_empty() {
            return Err(EngineReject::new(
                CODE_NO_ACTIVE_ORDER,
                format!("list {list_id} has no open order"),
            ));
        }
        for index in open_members {
            self.finish(index, VenueStatus::Canceled, None, now_ms);
        }
        Ok(())
    }

    /// Amends an open plain LIMIT order in place: same order_id, new price and quantity, the
    /// reservation recomputed for what is left to fill. 212 when the order is unknown or no
    /// longer open (as Crypto.com answers for a filled one), 40004 for other order kinds or an
    /// amendment that changes nothing, then the create checks (213, 308, 415, 204, 306). The
    /// replaced client_oid stays taken.
    pub fn amend_order(
        &mut self,
        now_ms: Millis,
        amend: &AmendRequest,
    ) -> Result<OrderAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let index = self.amendable_index(&amend.order_id)?;
        let report = &self.orders[index].report;
        let unchanged = report.price == Some(amend.new_price)
            && report.quantity == amend.new_quantity
            && amend
                .new_client_oid
                .as_ref()
                .is_none_or(|new| *new == report.client_oid);
        if unchanged {
            return Err(EngineReject::new(
                CODE_INVALID_ARGUMENT,
                "an amendment must change the price or the quantity",
            ));
        }
        let amended = OrderRequest {
            client_oid: amend
                .new_client_oid
                .clone()
                .unwrap_or_else(|| report.client_oid.clone()),
            symbol: report.symbol.clone(),
            side: report.side,
            order_type: OrderType::Limit,
            quantity: Some(amend.new_quantity),
            notional: None,
            price: Some(amend.new_price),
            trigger_price: None,
        };
        let filled = report.cumulative_quantity;
        let client_oid_changes = amended.client_oid != report.client_oid;
        if client_oid_changes {
            self.check_client_oids(&[&amended])?;
        }
        let instrument = self.instrument(&amended.symbol)?;
        validate::check_request(&amended, &instrument, amend.new_price)?;
        if amend.new_quantity <= filled {
            return Err(EngineReject::new(
                CODE_INVALID_QUANTITY,
                format!("new_quantity must exceed the filled {filled}"),
            ));
        }
        let remaining = OrderRequest {
            quantity: Some(amend.new_quantity - filled),
            ..amended.clone()
        };
        let (asset, amount) = self.required_funds(&remaining, &instrument, amend.new_price);
        let reserved = self.orders[index].reserved;
        let free = self.free_balance(&asset);
        if free + reserved < amount {
            return Err(EngineReject::new(
                CODE_INSUFFICIENT_BALANCE,
                format!("needs {amount} {asset}, {} free", free + reserved),
            ));
        }
        self.release(index, reserved);
        self.reserve(index, amount);
        let report = &mut self.orders[index].report;
        report.price = Some(amend.new_price);
        report.quantity = amend.new_quantity;
        report.client_oid = amended.client_oid.clone();
        report.update_time_ms = now_ms;
        if client_oid_changes {
            self.index_by_client_oid
                .insert(amended.client_oid.clone(), index);
        }
        Ok(OrderAck {
            order_id: amend.order_id.clone(),
            client_oid: amended.client_oid,
        })
    }

    /// Cancels every open order `selected` picks (list members one by one, as if each were
    /// cancelled alone) and returns them as cancelled. Selecting nothing is not an error.
    pub fn cancel_all(
        &mut self,
        now_ms: Millis,
        selected: impl Fn(&OrderReport) -> bool,
    ) -> Vec<OrderReport> {
        let now_ms = self.advance_and_now(now_ms);
        let chosen: Vec<usize> = self
            .open
            .iter()
            .copied()
            .filter(|index| selected(&self.orders[*index].report))
            .collect();
        for index in &chosen {
            self.finish(*index, VenueStatus::Canceled, None, now_ms);
        }
        chosen
            .iter()
            .map(|index| self.orders[*index].report.clone())
            .collect()
    }

    /// The index of an open plain LIMIT order, or the amend error for `order_id`.
    pub(super) fn amendable_index(&self, order_id: &str) -> Result<usize, EngineReject> {
        let index = self
            .index_by_order_id
            .get(order_id)
            .copied()
            .filter(|index| self.open.contains(index))
            .ok_or_else(|| {
                EngineReject::new(
                    CODE_INVALID_ORDER_ID,
                    format!("order {order_id} is unknown or no longer open"),
                )
            })?;
        let order = &self.orders[index];
        if order.role != Role::Single || order.report.order_type != OrderType::Limit {
            return Err(EngineReject::new(
                CODE_INVALID_ARGUMENT,
                "only a LIMIT order outside lists can be amended",
            ));
        }
        Ok(index)
    }

    pub(super) fn advance_and_now(&mut self, now_ms: Millis) -> Millis {
        self.advance_to(now_ms);
        self.now_ms
    }

    /// 40004 for a malformed client_oid, 204 for one seen before or repeated among `requests`.
    pub(super) fn check_client_oids(&self, requests: &[&OrderRequest]) -> Result<(), EngineReject> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for request in requests {
            validate::check_client_oid(&request.client_oid)?;
            let known = self.index_by_client_oid.contains_key(&request.client_oid);
            if known || !seen.insert(&request.client_oid) {
                return Err(EngineReject::new(
                    CODE_DUPLICATE_CLIENT_OID,
                    format!("duplicate client_oid {}", request.client_oid),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_protective_allowed(&self, symbol: &str) -> Result<(), EngineReject> {
        match self
            .behaviors
            .get(symbol)
            .and_then(|behavior| behavior.reject_protective.clone())
        {
            Some(reject) => Err(reject),
            None => Ok(()),
        }
    }

    pub(super) fn check_capacity(&self, count: usize) -> Result<(), EngineReject> {
        if self.open.len() + count > OPEN_ORDERS_MAX {
            return Err(EngineReject::new(
                CODE_TOO_MANY_ORDERS,
                format!("more than {OPEN_ORDERS_MAX} open orders"),
            ));
        }
        Ok(())
    }

    pub(super) fn check_funds(&self, asset: &str, amount: Decimal) -> Result<(), EngineReject> {
        let free = self.free_balance(asset);
        if free < amount {
            return Err(EngineReject::new(
                CODE_INSUFFICIENT_BALANCE,
                format!("needs {amount} {asset}, {free} free"),
            ));
        }
        Ok(())
    }

    /// The asset and amount an order spends: a SELL its base quantity; a BUY its notional, or
    /// quantity × (limit, trigger or last price) × (1 + fee rate) of quote as a buffer.
    pub(super) fn required_funds(
        &self,
        request: &OrderRequest,
        instrument: &Instrument,
        last_price: Decimal,
    ) -> (String, Decimal) {
        match (request.side, request.quantity, request.notional) {
            (Side::Sell, Some(quantity), _) => (instrument.base.clone(), quantity),
            (Side::Buy, None, Some(notional)) => (instrument.quote.clone(), notional),
            (Side::Buy, Some(quantity), _) => {
                let price = request
                    .price
                    .or(request.trigger_price)
                    .unwrap_or(last_price);
                let amount = quantity * price * (Decimal::ONE + self.taker_fee_rate);
                (instrument.quote.clone(), amount)
            }
            _ => unreachable!("validated requests have a quantity or a BUY notional"),
        }
    }

    pub(super) fn take_order_id(&mut self) -> String {
        let order_id = self.next_order_id;
        self.next_order_id = order_id.checked_add(1).expect("order ids exhausted");
        order_id.to_string()
    }

    pub(super) fn take_list_id(&mut self) -> String {
        let list_id = self.next_list_id;
        self.next_list_id = list_id.checked_add(1).expect("list ids exhausted");
        assert!(self.next_list_id < ORDER_ID_FIRST);
        list_id.to_string()
    }

    pub(super) fn insert_order(
        &mut self,
        now_ms: Millis,
        request: &OrderRequest,
        role: Role,
        list_id: Option<&str>,
    ) -> usize {
        let instrument = &self.instruments[&request.symbol];
        let (fee_currency, reserve_asset) = match request.side {
            Side::Buy => (instrument.base.clone(), instrument.quote.clone()),
            Side::Sell => (instrument.quote.clone(), instrument.base.clone()),
        };
        let (status, fill_due_ms) = match request.order_type {
            OrderType::Market => {
                let delay_ms = self.fill_delay_for(&request.symbol);
                (VenueStatus::New, Some(now_ms.saturating_add(delay_ms)))
            }
            OrderType::Limit => (VenueStatus::Active, None),
            OrderType::StopLoss | OrderType::TakeProfit => (VenueStatus::Pending, None),
        };
        let order_id = self.take_order_id();
        let report = OrderReport {
            order_id: order_id.clone(),
            client_oid: request.client_oid.clone(),
            symbol: request.symbol.clone(),
            side: request.side,
            order_type: request.order_type,
            status,
            quantity: request.quantity.unwrap_or(Decimal::ZERO),
            price: request.price,
            trigger_price: request.trigger_price,
            cumulative_quantity: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            cumulative_fee: Decimal::ZERO,
            fee_currency,
            list_id: list_id.map(str::to_string),
            reason: None,
            update_time_ms: now_ms,
        };
        let index = self.orders.len();
        self.orders.push(Order {
            report,
            role,
            notional: request.notional,
            reserve_asset,
            reserved: Decimal::ZERO,
            cumulative_value: Decimal::ZERO,
            fill_due_ms,
            armed: role != Role::OtocoLeg,
        });
        self.index_by_order_id.insert(order_id, index);
        self.index_by_client_oid
            .insert(request.client_oid.clone(), index);
        self.open.insert(index);
        index
    }
}

fn check_oco_shape(
    stop_loss: &OrderRequest,
    take_profit: &OrderRequest,
) -> Result<(), EngineReject> {
    let profit_type_ok = matches!(
        take_profit.order_type,
        OrderType::TakeProfit | OrderType::Limit
    );
    if stop_loss.order_type != OrderType::StopLoss || !profit_type_ok {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "oco needs a STOP_LOSS leg and a TAKE_PROFIT or LIMIT leg",
        ));
    }
    if stop_loss.symbol != take_profit.symbol || stop_loss.side != take_profit.side {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "oco legs must share symbol and side",
        ));
    }
    Ok(())
}

fn check_otoco_shape(
    entry: &OrderRequest,
    stop_loss: &OrderRequest,
    take_profit: &OrderRequest,
) -> Result<(), EngineReject> {
    let entry_ok = matches!(entry.order_type, OrderType::Market | OrderType::Limit);
    let legs_ok = stop_loss.order_type == OrderType::StopLoss
        && take_profit.order_type == OrderType::TakeProfit;
    if !entry_ok || !legs_ok {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "otoco needs a MARKET or LIMIT entry, a STOP_LOSS and a TAKE_PROFIT",
        ));
    }
    let same_symbol = [stop_loss, take_profit]
        .iter()
        .all(|leg| leg.symbol == entry.symbol);
    let opposite_side = [stop_loss, take_profit]
        .iter()
        .all(|leg| leg.side == entry.side.opposite());
    if !same_symbol || !opposite_side {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "otoco legs must share the entry's symbol and take the opposite side",
        ));
    }
    Ok(())
}
