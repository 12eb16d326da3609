//! Safety numbers (placeholder)
