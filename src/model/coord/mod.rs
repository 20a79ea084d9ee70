//! The coordination family (L1–L3 of the catalogue): leaders, leases and clocks.
//!
//! Split brain, zombie lock holders and last-writer-wins under skew all come from the same
//! question — who may act now, and how does a node know? — answered by votes (Raft's terms),
//! by time (leases judged on a node's own, possibly skewed, clock) or by the storage (fencing
//! tokens). Each member of the family is a pure core tested on its exact semantics plus an
//! actor generic over `M: Carry<Family>`, as in the other families; the timeouts that decide
//! liveness run on the node's local clock, so clock faults change what a node believes.

pub mod raft;
