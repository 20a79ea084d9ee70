//! Checks on a finished run (placeholder; see the checks branch).
