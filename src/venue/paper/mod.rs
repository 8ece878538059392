//! The embedded paper venue (placeholder).
