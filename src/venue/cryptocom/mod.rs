//! The Crypto.com Exchange v1 venue. Only this module knows the exchange's wire format.

pub mod sign;
