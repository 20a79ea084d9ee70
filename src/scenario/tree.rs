//! A RON reader that keeps names and positions (placeholder; see the scenario-tree branch).
