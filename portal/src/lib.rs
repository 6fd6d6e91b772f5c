//! The citizen portal (being written).
